"""The GitHub Actions workflow cannot run here, so it is checked here: actionlint and zizmor."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).parents[1] / ".github" / "workflows" / "gate.yml"


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (it comes with the test extras)")
    return path


def test_workflow_passes_actionlint():
    result = subprocess.run([_tool("actionlint"), str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_passes_zizmor():
    result = subprocess.run([_tool("zizmor"), "--offline", str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_by_commit_and_permissions_are_least():
    text = WORKFLOW.read_text()
    uses = re.findall(r"uses:\s*(\S+)", text)
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", use) for use in uses), uses
    assert "permissions: {}" in text  # nothing at the workflow level; the job asks for what it needs
    assert "contents: write" not in text and "persist-credentials: false" in text
