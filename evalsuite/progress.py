"""One line per stage: what it did and how long it took; silenced by --quiet."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def heartbeat(what: str, every: float = 10.0):
    """While the block runs, say every `every` seconds that `what` is still going (no silent stretches)."""
    import threading
    import time

    done = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not done.wait(every):
            log(f"{what} ({time.perf_counter() - started:.0f}s so far)")

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
