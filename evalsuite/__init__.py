"""Shared plumbing for the stages: run folders, manifests, data, errors."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) drowns the stage lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
