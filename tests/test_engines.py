"""The analysis on a real Beam engine beside the DirectRunner: the same numbers, bit for bit.

Prism is Beam's own portable runner (what Beam's default runner becomes where it can
download it); `engines/prism.sh build` builds it from Beam's Go module. Without the
binary these tests skip, except where EVALSUITE_REQUIRE_ENGINES=1 (CI) makes a missing
engine a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_command

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.engine, pytest.mark.slow]


def prism_binary() -> Path:
    """The Prism binary engines/prism.sh builds for the installed Beam, or skip (fail in CI)."""
    from importlib.metadata import version

    cache = Path(os.environ.get("EVALSUITE_ENGINES_CACHE", Path.home() / ".cache" / "evalsuite-engines"))
    binary = cache / f"prism-{version('apache-beam')}" / "prism"
    if not os.access(binary, os.X_OK):
        message = f"no Prism binary at {binary} (engines/prism.sh build makes it)"
        if os.environ.get("EVALSUITE_REQUIRE_ENGINES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _prism_processes() -> set[int]:
    found = subprocess.run(["pgrep", "-x", "prism"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


def _exact(summary: dict) -> dict:
    """Everything in summary.json that is a count or a ratio of counts; where the runner is named, not."""
    models = {
        role: {sid: {k: v for k, v in values.items() if k != "crossentropy"} for sid, values in slices.items()}
        for role, slices in summary["models"].items()
    }
    return {"models": models, "deltas": summary["deltas"], "paired": summary["paired"], "eval": summary["eval_data"]}


def _validation(path: Path):
    """TFMA's validation result with every list of slices in one order (runners list them in their own)."""

    def ordered(value):
        if isinstance(value, dict):
            return {key: ordered(item) for key, item in value.items()}
        if isinstance(value, list):
            return sorted((ordered(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
        return value

    return ordered(json.loads(path.read_text()))


def test_prism_gives_the_direct_runners_numbers_changed_list_and_verdict(tiny_run, tmp_path):
    binary = prism_binary()
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns(".lock"), symlinks=True)
    direct = {name: (tiny_run / "analysis" / name) for name in ("summary.json", "changed.json", "validation.json")}
    already = _prism_processes()

    done = subprocess.run(
        ["bash", str(REPO / "engines" / "prism.sh"), "analyse", "--run-dir", str(run), "-q"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    summary = json.loads((run / "analysis" / "summary.json").read_text())
    assert _exact(summary) == _exact(json.loads(direct["summary.json"].read_text()))
    assert (run / "analysis" / "changed.json").read_bytes() == direct["changed.json"].read_bytes()
    assert _validation(run / "analysis" / "validation.json") == _validation(direct["validation.json"])
    record = json.loads((run / "manifest.json").read_text())["stages"]["analysis"]
    assert record["runner"] == "PrismRunner" and f"--prism_location={binary}" in record["beam_args"]

    gated = run_command("gates", "--run-dir", str(run), "-q", timeout=600)
    assert gated.returncode == 0, gated.stderr[-2000:]
    on_prism = json.loads((run / "gate" / "verdict.json").read_text())
    on_direct = json.loads((tiny_run / "gate" / "verdict.json").read_text())
    assert on_prism["state"] == on_direct["state"] and on_prism["checks"] == on_direct["checks"]
    # Everything the analysis started on Prism stopped with it.
    assert _prism_processes() - already == set()
