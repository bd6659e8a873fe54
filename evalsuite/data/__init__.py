"""What comes in: labelled images from every source, their spec, class names, slice features and tf.Example files."""
