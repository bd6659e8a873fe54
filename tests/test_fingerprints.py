"""Each stage's fingerprint covers the code that stage runs, nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalsuite.rundir import REPO_ROOT, stage_code_fingerprint

STAGES = ("training", "analysis", "report")


@pytest.fixture
def source_tree(tmp_path) -> Path:
    """A copy of the project's sources to edit."""
    root = tmp_path / "src"
    for package in ("evalsuite", "training", "analysis", "gates", "reports", "pipeline"):
        shutil.copytree(REPO_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def fingerprints(root: Path) -> dict[str, str]:
    return {stage: stage_code_fingerprint(stage, root) for stage in STAGES}


@pytest.mark.parametrize(
    "edited, changes",
    [
        ("evalsuite/formatting.py", {"report"}),
        ("reports/markdown.py", {"report"}),
        ("gates/outputs.py", set()),
        ("gates/verdict.py", set()),
        ("evalsuite/rules.py", set()),  # the rules reach the analysis as data (its thresholds), not as code
        ("pipeline/run.py", set()),
        ("training/model.py", {"training"}),
        ("evalsuite/datasets.py", {"training", "analysis"}),
        ("analysis/paired.py", {"analysis"}),
        ("analysis/evaluate.py", {"analysis"}),
    ],
)
def test_a_comment_reruns_exactly_the_stages_that_run_the_edited_file(source_tree, edited, changes):
    before = fingerprints(source_tree)
    with open(source_tree / edited, "a", encoding="utf-8") as handle:
        handle.write("\n# an added comment\n")
    after = fingerprints(source_tree)
    assert {stage for stage in STAGES if before[stage] != after[stage]} == changes


def test_fingerprints_are_stable():
    assert fingerprints(REPO_ROOT) == fingerprints(REPO_ROOT)
