"""Command lines: exit codes and one-line messages, checked together."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_module(module: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def error_lines(stderr: str) -> list[str]:
    """Our own lines; TensorFlow's C++ start-up chatter on stderr is not ours to silence."""
    return [line for line in stderr.splitlines() if line.startswith("error:") or "Traceback" in line]


def test_missing_data_path_is_exit_2_one_line(tmp_path):
    result = run_module("evalsuite", "--run-dir", str(tmp_path / "run"), "--data", str(tmp_path / "nowhere"))
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


def test_usage_errors_are_exit_2():
    result = run_module("gates")
    assert result.returncode == 2 and "--run-dir is required" in result.stderr
    result = run_module("training", "--epochs", "three")
    assert result.returncode == 2 and "invalid int value" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_module("evalsuite", "--run-dir", str(tmp_path / "run"), "--data", str(tmp_path / "nowhere"), "--debug")
    assert result.returncode == 2 and "Traceback" in result.stderr


@pytest.mark.parametrize("module", ["evalsuite", "training", "analysis", "gates", "reports"])
def test_help_shows_an_example(module):
    result = run_module(module, "--help")
    assert result.returncode == 0 and "Example" in result.stdout
