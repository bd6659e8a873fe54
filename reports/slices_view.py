"""The slicing browser as `python -m reports view` serves it: at once from summary.json, then from TFMA's output.

The page is ready before the URLs are printed, with summary.json's numbers
(and, with `--registry`, the accuracy across blessed models). Reading TFMA's
own output needs TFMA, whose import takes seconds (TensorFlow and Beam), so a
process of its own reads it with `tfma.load_eval_result`
(`python -m reports.slices_tfma`) while the servers already answer, and the
page is then swapped for one drawn from it: the same numbers, every slice's
confusion matrix, and a warning on the page where summary.json says
otherwise. Stopping the view stops that process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from evalsuite import progress
from evalsuite.errors import InputError
from evalsuite.run.contract import load_changed, load_discovered, load_summary
from evalsuite.run.folder import RunDir
from reports.slices_data import numbers_from_summary, page_data, with_numbers
from reports.slices_page import render_page


class LivePage:
    """The served page's bytes, replaced once when TFMA's own output has been read."""

    def __init__(self, run: RunDir, registry: Path | None = None):
        from reports.slices_history import registry_history

        self.run = run
        self.summary = load_summary(run.analysis_dir)
        self.discovered = load_discovered(run.analysis_dir)
        changed = load_changed(run.analysis_dir)
        self.history = registry_history(registry, self.summary, warn=progress.warn) if registry else None
        self.data = page_data(run, self.summary, changed, self.discovered, None, self.history)
        self.body = render_page(self.data).encode("utf-8")
        self.source = "summary"
        self.done = threading.Event()
        self._process: subprocess.Popen | None = None
        self._stopping = False

    def read_tfma(self) -> None:
        """Redraw the page from TFMA's own output; a failure leaves summary.json's page and says why."""
        from reports.slices_tfma import disagreement_warning, disagreements

        started = time.perf_counter()
        try:
            output, errors = self._process.communicate()
            if self._stopping:
                return
            if self._process.returncode != 0:
                said = [line for line in errors.splitlines() if line.startswith("error: ")]
                reason = said[-1].removeprefix("error: ") if said else f"exit {self._process.returncode}"
                progress.warn(f"slices: {reason}; the browser shows summary.json's numbers")
                return
            numbers = json.loads(output)
            warning = disagreement_warning(disagreements(numbers, numbers_from_summary(self.summary)))
            if warning:
                numbers["warnings"] = [warning]
                progress.warn(f"slices: {warning}")
            self.body = render_page(with_numbers(self.data, self.summary, self.discovered, numbers)).encode("utf-8")
            self.source = "tfma"
            progress.log(f"slices: read TFMA's output with tfma.load_eval_result in {time.perf_counter() - started:.1f}s")
        except (ValueError, KeyError, TypeError, InputError) as error:
            progress.warn(f"slices: TFMA's output could not be used ({error}); the browser shows summary.json's numbers")
        finally:
            self.done.set()

    def start_reading_tfma(self) -> None:
        """Start the reader process and a thread that waits for it."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", "reports.slices_tfma", str(self.run.tfma_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=_end_with_parent(),
        )
        threading.Thread(target=self.read_tfma, name="read-tfma", daemon=True).start()

    def stop(self) -> None:
        """Stop the reader process if it is still reading."""
        self._stopping = True
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def _end_with_parent():
    """For the reader process: on Linux, SIGTERM when the view ends, however it ends (even SIGKILL).

    Resolved here, in the view; the child only calls it between fork and exec (no import, no lock there).
    Elsewhere None: the reader finishes on its own, in seconds, and exits.
    """
    import ctypes
    import signal

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
