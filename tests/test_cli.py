"""Command lines: exit codes and one-line messages, checked together."""

from __future__ import annotations

import pytest

from tests.helpers import error_lines
from tests.helpers import run_command as run_module


def test_missing_data_path_is_exit_2_one_line(tmp_path):
    result = run_module("pipeline", "--run-dir", str(tmp_path / "run"), "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert error_lines(result.stderr) == [f"error: {tmp_path / 'nowhere'}: no such file or folder"]


def test_run_folder_without_models_is_exit_2(tmp_path):
    (tmp_path / "run").mkdir()
    result = run_module("analysis", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "no baseline model named 'epochs-3'" in lines[0] and "train first" in lines[0]


def test_gate_without_analysis_is_exit_2(tmp_path):
    (tmp_path / "run").mkdir()
    result = run_module("gates", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"error: {tmp_path / 'run'}: no finished analysis in this run folder (run the analysis stage first)"
    ]


def test_gate_on_a_missing_run_folder_creates_nothing(tmp_path):
    result = run_module("gates", "--run-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert error_lines(result.stderr) == [f"error: {tmp_path / 'nowhere'}: no such run folder"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "module, args, expected",
    [
        ("pipeline", ["--seed", "-1"], "--seed: must be in 0..4294967295"),
        ("pipeline", ["--seed", str(2**32)], "--seed: must be in 0..4294967295"),
        ("training", ["--train-limit", "0"], "--train-limit: must be at least 2"),
        ("pipeline", ["--eval-limit", "-3"], "--eval-limit: must be at least 2"),
        ("analysis", ["--candidate", ""], "--candidate: empty model name"),
        ("reports", ["view", "--report-port", "70000"], "--report-port: must be a port number in 0..65535"),
        ("reports", ["view", "--port", "-1"], "--port: must be a port number in 0..65535"),
    ],
)
def test_numbers_out_of_range_are_exit_2_and_touch_nothing(tmp_path, module, args, expected):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = (
        run_module(module, "--run-dir", str(run_dir), *args)
        if args[0] != "view"
        else run_module(module, args[0], "--run-dir", str(run_dir), *args[1:])
    )
    assert result.returncode == 2, result.stderr
    assert len(error_lines(result.stderr)) == 1 and expected in result.stderr
    assert list(run_dir.iterdir()) == []


def test_usage_errors_are_exit_2():
    result = run_module("gates")
    assert result.returncode == 2 and "--run-dir is required" in result.stderr
    result = run_module("training", "--epochs", "three")
    assert result.returncode == 2 and "--epochs: expected epoch counts such as 3,6" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_module("pipeline", "--run-dir", str(tmp_path / "run"), "--data", str(tmp_path / "nowhere"), "--debug")
    assert result.returncode == 2 and "Traceback" in result.stderr


@pytest.mark.parametrize("module", ["pipeline", "training", "analysis", "gates", "reports"])
def test_help_shows_an_example(module):
    result = run_module(module, "--help")
    assert result.returncode == 0 and "Example" in result.stdout
