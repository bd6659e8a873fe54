"""Errors that become exit codes, and the one place that maps them."""

from __future__ import annotations

import atexit
import gc
import os
import sys
import traceback
from pathlib import Path
from typing import Callable

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def signal_name(number: int) -> str:
    """SIGKILL for 9; a real-time signal, which has no name, by its number."""
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class InputError(Exception):
    """Bad input or usage: a file, key or folder the user must fix (exit 2)."""


def freeze_heap_at_exit() -> None:
    """Skip the interpreter's last garbage collections when the process exits.

    With TensorFlow, Beam and TFMA loaded they walk millions of objects the OS is
    about to reclaim anyway: about 2-3 s of every command's exit. Frozen objects are
    not walked; atexit handlers, file flushes and module teardown still run as usual.
    """
    atexit.unregister(gc.freeze)  # once per process, however many commands run in it
    atexit.register(gc.freeze)


def run_cli(main: Callable[[], int], debug: bool | None = None) -> int:
    """Call `main`, turning library errors into one line on stderr and an exit code.

    A traceback is shown only with --debug (or EVALSUITE_DEBUG=1), so CI logs
    stay readable while a developer can still see where an error came from.
    """
    if debug is None:
        debug = "--debug" in sys.argv[1:] or os.environ.get("EVALSUITE_DEBUG") == "1"
    from evalsuite.libraries import quiet_libraries

    quiet_libraries(verbose=debug or bool({"-v", "--verbose"} & set(sys.argv[1:])))
    freeze_heap_at_exit()
    try:
        return main()
    except InputError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as error:
        # Only the command decides its exit code: code it ran that called exit() judged nothing.
        if debug:
            traceback.print_exc()
        print(f"error: code this command ran called exit({error.code!r}) before a verdict; nothing was judged",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        # A full disk, a permission, a vanished file: the environment, not the rules.
        if debug:
            traceback.print_exc()
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - exit 1 is reserved for "the rules said no"
        if debug:
            traceback.print_exc()
        frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        place = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        message = (str(error).strip().splitlines() or [""])[0][:300]
        print(
            f"error: unexpected {type(error).__name__}{place}: {message} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
