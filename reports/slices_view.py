"""The slicing browser as `python -m reports view` serves it: at once from summary.json, then from TFMA's output.

The page is ready before the URLs are printed, with summary.json's numbers
(and, with `--registry`, the accuracy across blessed models). Reading TFMA's
own output needs TFMA, whose import takes seconds, so a background thread
reads it with `tfma.load_eval_result` and then swaps the page for one drawn
from it: the same numbers, every slice's confusion matrix, and a warning on
the page where summary.json says otherwise.
"""

from __future__ import annotations

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

    def read_tfma(self) -> None:
        """Redraw the page from TFMA's own output; a failure leaves summary.json's page and says why."""
        from reports.slices_tfma import disagreement_warning, disagreements, numbers_from_tfma

        started = time.perf_counter()
        try:
            numbers = numbers_from_tfma(self.run.tfma_dir)
            warning = disagreement_warning(disagreements(numbers, numbers_from_summary(self.summary)))
            if warning:
                numbers["warnings"] = [warning]
                progress.warn(f"slices: {warning}")
            self.body = render_page(with_numbers(self.data, self.summary, self.discovered, numbers)).encode("utf-8")
            self.source = "tfma"
            progress.log(f"slices: read TFMA's output with tfma.load_eval_result in {time.perf_counter() - started:.1f}s")
        except InputError as error:
            progress.warn(f"slices: {error}; the browser shows summary.json's numbers")
        except Exception as error:  # noqa: BLE001 - the servers stay up; the page keeps summary.json's numbers
            progress.warn(f"slices: TFMA's output could not be read ({type(error).__name__}: {error}); the browser shows summary.json's numbers")
        finally:
            self.done.set()

    def start_reading_tfma(self) -> None:
        threading.Thread(target=self.read_tfma, name="read-tfma", daemon=True).start()
