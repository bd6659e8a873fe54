"""Gate stage: TFMA's model validation turned into a verdict CI can read."""
