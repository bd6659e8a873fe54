"""Benchmarks and calibration: speed, memory and the gate's error rates, measured side by side in one run."""
