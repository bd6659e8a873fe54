"""Analysis stage: TFMA on Apache Beam over the finished SavedModels."""
