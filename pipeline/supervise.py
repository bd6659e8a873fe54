"""The `evalsuite` command's outer process: exit 0 and 1 only ever come from a verdict this run wrote.

The pipeline runs user code (a model factory) in its own process, and user code
can end that process with any exit code: `sys.exit(0)`, `os._exit(1)`, a signal.
So the command runs twice over: an outer process that imports nothing heavy
starts the pipeline as its child, and believes a 0 or a 1 only when the child
left a receipt naming the verdict it wrote and that verdict, as it is on disk,
says the same. Anything else is exit 2 with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from evalsuite.errors import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_INTERRUPTED, EXIT_OK, InputError, signal_name
from evalsuite.safe_files import MAX_JSON_BYTES, read_bounded

RECEIPT_ENV = "EVALSUITE_RECEIPT"


def is_child() -> bool:
    return bool(os.environ.get(RECEIPT_ENV))


def run_supervised(model: str | None) -> int:
    """Run this same command line as a child process and vouch for its exit code."""
    handle, receipt = tempfile.mkstemp(prefix="evalsuite-receipt-", suffix=".json")
    os.close(handle)
    # The hash seed is pinned here, for the child, rather than by re-executing it (see cli.pin_hash_seed).
    env = {**os.environ, RECEIPT_ENV: receipt, "PYTHONHASHSEED": "0"}
    try:
        # In a process group of its own, the child hears a Ctrl-C once, from here, like any other signal sent here.
        child = subprocess.Popen(
            [sys.executable, *sys.orig_argv[1:]], env=env, process_group=0, preexec_fn=_die_with_parent(os.getpid())
        )
        previous_int = signal.signal(signal.SIGINT, lambda *_: child.send_signal(signal.SIGINT))
        previous_term = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        try:
            code = child.wait()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
        return vouch(code, read_receipt(Path(receipt)), model)
    finally:
        Path(receipt).unlink(missing_ok=True)


def _die_with_parent(parent: int):
    """In the child, before it runs: if this outer process is killed (SIGKILL gives it no say), so is the child,
    as it would have been when the pipeline was one process."""

    def arrange() -> None:
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
        except (AttributeError, OSError):
            return  # not Linux: the child outlives a killed parent, as any child would
        if os.getppid() != parent:
            os._exit(EXIT_INTERRUPTED)  # the parent died before the line above

    return arrange


def vouch(code: int, receipt: dict, model: str | None) -> int:
    """The child's exit code when its receipt backs it, else exit 2 with one line saying what happened."""
    culprit = f"; the model factory {model} may have ended it" if model and model not in ("mlp", "cnn") else ""
    if code in (EXIT_OK, EXIT_GATE_FAILED):
        problem = verdict_problem(code, receipt)
        if problem is None:
            return code
        print(f"error: the pipeline ended with exit {code} but {problem}{culprit}; nothing was judged", file=sys.stderr)
        return EXIT_BAD_INPUT
    if code < 0:
        if -code == signal.SIGINT:
            print("error: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(
            f"error: the pipeline was killed by {signal_name(-code)} before a verdict{culprit}; nothing was judged",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if receipt.get("exit") == code:
        return code  # the pipeline said why, in its own line
    print(f"error: the pipeline ended with exit {code} before a verdict{culprit}; nothing was judged", file=sys.stderr)
    return EXIT_BAD_INPUT


def verdict_problem(code: int, receipt: dict) -> str | None:
    """Why exit `code` is not backed by the verdict the receipt names (None: it is)."""
    if receipt.get("exit") != code or not receipt.get("verdict"):
        return "wrote no verdict"
    path = Path(receipt["verdict"])
    try:
        content = read_bounded(path, MAX_JSON_BYTES, "verdict")
        verdict = json.loads(content)
    except (OSError, ValueError, InputError):
        return f"its verdict {path} cannot be read"
    if hashlib.sha256(content).hexdigest() != receipt.get("sha256"):
        return f"its verdict {path} changed after it was written"
    if not isinstance(verdict, dict) or verdict.get("passed") is not (code == EXIT_OK):
        return f"its verdict {path} does not say {'passed' if code == EXIT_OK else 'failed'}"
    return None


def write_receipt(code: int, verdict: Path | None = None) -> None:
    """In the child: what it is about to exit with, and the verdict file that says so."""
    receipt = os.environ.get(RECEIPT_ENV)
    if not receipt:
        return
    record: dict = {"exit": code}
    if verdict is not None and verdict.is_file():
        record |= {"verdict": str(verdict.resolve()), "sha256": hashlib.sha256(verdict.read_bytes()).hexdigest()}
    Path(receipt).write_text(json.dumps(record), "utf-8")


def read_receipt(path: Path) -> dict:
    try:
        record = json.loads(read_bounded(path, 1 << 20, "receipt") or b"{}")
    except (OSError, ValueError, InputError):
        return {}
    return record if isinstance(record, dict) else {}
