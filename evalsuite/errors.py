"""Errors that become exit codes, and the one place that maps them."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class InputError(Exception):
    """Bad input or usage: a file, key or folder the user must fix (exit 2)."""


def run_cli(main: Callable[[], int], debug: bool | None = None) -> int:
    """Call `main`, turning library errors into one line on stderr and an exit code.

    A traceback is shown only with --debug (or EVALSUITE_DEBUG=1), so CI logs
    stay readable while a developer can still see where an error came from.
    """
    if debug is None:
        debug = "--debug" in sys.argv[1:] or os.environ.get("EVALSUITE_DEBUG") == "1"
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
