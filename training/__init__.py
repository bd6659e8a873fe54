"""Training stage: seeded Keras runs, TensorBoard logs, SavedModels."""
