"""The whole pipeline in one process, on top of the stages (the `evalsuite` command)."""
