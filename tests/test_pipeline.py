"""The whole pipeline, end to end, as `tox -e gate` runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import never_predicts, run_command, run_pipeline

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> tuple[Path, object]:
    """The default run on the bundled digits, seed 42, as a newcomer starts it."""
    run_dir = tmp_path_factory.mktemp("default") / "run"
    return run_dir, run_command("pipeline", "--run-dir", str(run_dir), "--data", "bundled", cwd=ROOT)


@pytest.mark.slow
def test_default_run_passes_the_default_gate(default_run):
    run_dir, first = default_run
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    out = first.stdout
    for line in (
        "run folder:",
        "data: bundled",
        "training: epochs-3 + epochs-6",
        "analysis: TFMA on 1000 examples, 2 models, 11 slices, runner DirectRunner",
        "gate: PASS overall improvement",
        "report:",
        "where everything is:",
        "gate: PASSED",
    ):
        assert line in out, line
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    assert verdict["state"] == "passed" and verdict["passed"] is True
    assert verdict["judged"]["candidate"]["label"] == "epochs-6"
    for check in verdict["checks"]:
        assert {"metric", "slice", "baseline", "candidate", "threshold", "passed", "status", "conclusive"} <= set(check)
        assert check["interval"][0] < check["interval"][1]
        assert check["counts"]["examples"] == (1000 if check["slice"] == "overall" else 100)
    for path in (
        "models/epochs-3/saved_model.pb",
        "models/epochs-6/saved_model.pb",
        "models/epochs-3.keras",
        "logs/epochs-3/train",
        "logs/epochs-6/validation",
        "analysis/summary.json",
        "analysis/changed.json",
        "gate/junit.xml",
        "gate/summary.md",
        "report/summary.md",
        "report/index.html",
        "manifest.json",
    ):
        assert (run_dir / path).exists(), path


@pytest.mark.slow
def test_default_run_gives_bitwise_the_numbers_and_verdict_it_always_gave(default_run):
    """The reference: a change that moves the default run's models, numbers or verdict fails here."""
    run_dir, first = default_run
    assert first.returncode == 0
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    accuracy = {role: summary["models"][role]["overall"]["accuracy"] for role in ("baseline", "candidate")}
    assert accuracy == {"baseline": 0.9290000200271606, "candidate": 0.9359999895095825}  # float32 929/1000, 936/1000
    paired = {sid: (cells["newly_right"], cells["newly_wrong"]) for sid, cells in summary["paired"].items()}
    assert paired == {
        "overall": (16, 9), "label=0": (1, 0), "label=1": (0, 0), "label=2": (4, 2), "label=3": (0, 3),
        "label=4": (0, 0), "label=5": (1, 4), "label=6": (0, 0), "label=7": (2, 0), "label=8": (6, 0), "label=9": (2, 0),
    }  # fmt: skip
    changed = json.loads((run_dir / "analysis" / "changed.json").read_text())
    assert len(changed["examples"]) == 25
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    statuses = {check["slice"]: check["status"] for check in verdict["checks"]}
    assert verdict["state"] == "passed"
    assert statuses == {"overall": "pass", **{f"label={c}": "inconclusive" if c in (3, 5) else "pass" for c in range(10)}}


@pytest.mark.slow
def test_a_log_that_is_not_a_terminal_holds_only_readable_lines(default_run):
    """What CI shows: no library C++ logging, no CUDA probing, no deprecation block, no ANSI, short lines."""
    import re

    run_dir, first = default_run
    lines = (first.stdout + first.stderr).splitlines()
    for line in lines:
        assert not re.match(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", line), line
        assert "absl::InitializeLog" not in line and "cuda" not in line.lower(), line
        assert "deprecated" not in line and "Instructions for updating" not in line, line
        assert not line.startswith(("WARNING:absl", "WARNING:tensorflow")), line
        assert "\x1b" not in line and "\r" not in line, repr(line)
        # Short lines, apart from the run folder's own path (a deep temporary folder is not the log's doing).
        assert len(line.replace(str(run_dir), "RUN")) <= 200, line
    epochs = [line for line in lines if line.startswith("training: epoch ")]
    assert len(epochs) == 6 and "validation accuracy" in epochs[-1]
    assert any(line.startswith("analysis: TFMA on 1000 examples") for line in lines)
    assert any(line.startswith("analysis: TFMA done in") for line in lines)


@pytest.mark.slow
def test_default_run_is_reused_as_a_whole(default_run):
    run_dir, first = default_run
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    again = run_command("pipeline", "--run-dir", str(run_dir), "--data", "bundled", "-q", cwd=ROOT)
    assert again.returncode == first.returncode
    assert "Epoch 1/" not in again.stdout and "epoch 1/" not in again.stdout
    assert json.loads((run_dir / "analysis" / "summary.json").read_text()) == summary
    loud = run_command("pipeline", "--run-dir", str(run_dir), "--data", "bundled", cwd=ROOT)
    assert "training: reused epochs-3, epochs-6" in loud.stdout and "analysis: reused" in loud.stdout


@pytest.mark.slow
def test_planted_regression_fails_the_default_gate(default_run, tmp_path):
    """The same run, with a candidate that never predicts 4: exit 1, digit 4 named."""
    run_dir, _ = default_run
    planted = never_predicts(run_dir / "models" / "epochs-6", 4, tmp_path / "never-fours")
    result = run_command(
        "gates", "--run-dir", str(run_dir), "--baseline", "epochs-3", "--candidate", str(planted), cwd=ROOT
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "FAIL per-class drop [digit 4]" in result.stdout
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    failed = {check["slice"] for check in verdict["checks"] if check["status"] == "fail"}
    assert "label=4" in failed and verdict["state"] == "failed"


@pytest.mark.slow
def test_fresh_run_reproduces_the_numbers(tmp_path, tiny_npz, tiny_run):
    """Determinism: a second run from scratch gives identical counts, accuracies, intervals and verdict."""
    other = tmp_path / "again"
    result = run_pipeline("--run-dir", str(other), "--data", str(tiny_npz), "--epochs", "1", "2", "--seed", "7", "-q")
    assert result.returncode == 0, result.stderr[-2000:]
    first = json.loads((tiny_run / "analysis" / "summary.json").read_text())
    second = json.loads((other / "analysis" / "summary.json").read_text())
    for key in ("deltas", "paired", "confusion_matrices"):
        assert first[key] == second[key], key
    for role, slices in first["models"].items():
        for sid, values in slices.items():
            assert second["models"][role][sid]["accuracy"] == values["accuracy"]
            assert second["models"][role][sid]["examples"] == values["examples"]
            # A float mean whose summation order follows Beam's bundles: equal to float32 rounding.
            assert second["models"][role][sid]["crossentropy"] == pytest.approx(values["crossentropy"], rel=1e-6)
    first_verdict = json.loads((tiny_run / "gate" / "verdict.json").read_text())
    second_verdict = json.loads((other / "gate" / "verdict.json").read_text())
    assert first_verdict["checks"] == second_verdict["checks"]
