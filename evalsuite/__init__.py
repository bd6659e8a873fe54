"""The floor under the stages: three wings (data/, rules/, run/), and errors, CLI helpers, tables, progress, the registry."""
