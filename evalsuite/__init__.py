"""Shared plumbing for the stages: run folders, the run-folder contract, rules, data, errors."""
