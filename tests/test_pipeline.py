"""The whole pipeline, end to end, as `tox -e gate` runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_pipeline

ROOT = Path(__file__).parents[1]


def evalsuite(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "evalsuite", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )


@pytest.mark.slow
def test_full_pipeline_on_the_bundled_digits_then_reuse(tmp_path):
    run_dir = tmp_path / "run"
    first = evalsuite("--run-dir", str(run_dir), "--data", "bundled", cwd=ROOT)
    assert first.returncode in (0, 1), first.stderr[-2000:]
    out = first.stdout
    for line in (
        "run folder:",
        "data: bundled",
        "training: epochs-3 + epochs-6",
        "analysis: TFMA on 1000 examples",
        "gate: PASS overall improvement" if first.returncode == 0 else "gate: FAIL",
        "report:",
        "where everything is:",
    ):
        assert line in out, line
    assert "Epoch 6/6" in out  # Keras' own progress
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    assert verdict["passed"] == (first.returncode == 0)
    assert {"passed", "baseline", "candidate", "checks"} <= set(verdict)
    for check in verdict["checks"]:
        assert {"metric", "slice", "baseline", "candidate", "threshold", "passed"} <= set(check)
    for path in (
        "models/epochs-3/saved_model.pb",
        "models/epochs-6/saved_model.pb",
        "models/epochs-3.keras",
        "logs/epochs-3/train",
        "logs/epochs-6/validation",
        "analysis/summary.json",
        "gate/junit.xml",
        "gate/summary.md",
        "report/summary.md",
        "manifest.json",
    ):
        assert (run_dir / path).exists(), path
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())

    again = evalsuite("--run-dir", str(run_dir), "--data", "bundled", "-q", cwd=ROOT)
    assert again.returncode == first.returncode
    assert "Epoch 1/" not in again.stdout
    # Same seed and data give the same numbers; the second run reused the first.
    assert json.loads((run_dir / "analysis" / "summary.json").read_text()) == summary

    loud = evalsuite("--run-dir", str(run_dir), "--data", "bundled", cwd=ROOT)
    assert "training: reused epochs-3, epochs-6" in loud.stdout and "analysis: reused" in loud.stdout


@pytest.mark.slow
def test_fresh_run_reproduces_the_numbers(tmp_path, tiny_npz, tiny_run):
    """Determinism: a second run from scratch in another folder gives identical results, intervals included."""
    other = tmp_path / "again"
    result = run_pipeline("--run-dir", str(other), "--data", str(tiny_npz), "--epochs", "1", "2", "--seed", "7", "-q")
    assert result.returncode in (0, 1), result.stderr[-2000:]
    first = json.loads((tiny_run / "analysis" / "summary.json").read_text())
    second = json.loads((other / "analysis" / "summary.json").read_text())
    assert first["deltas"]["overall"]["accuracy_ci"] is not None
    assert first["models"] == second["models"] and first["deltas"] == second["deltas"]
