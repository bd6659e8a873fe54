"""One line per stage: what it did and how long it took; silenced by --quiet."""

from __future__ import annotations

import sys

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def log(message: str) -> None:
    if not _quiet:
        print(message, file=sys.stdout, flush=True)


def warn(message: str) -> None:
    """A warning shows even with --quiet (quiet means: only warnings, errors and the result)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
