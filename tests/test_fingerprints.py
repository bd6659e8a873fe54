"""Each stage's fingerprint covers the code that stage imports, nothing else."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from evalsuite.run import stage_code
from evalsuite.run.stage_code import REPO_ROOT, STAGE_ENTRY, project_imports, stage_code_fingerprint

STAGES = tuple(STAGE_ENTRY)


@pytest.fixture
def source_tree(tmp_path) -> Path:
    """A copy of the project's packages to edit; the real files are never touched."""
    root = tmp_path / "src"
    for package in REPO_ROOT.iterdir():
        if (package / "__init__.py").is_file():
            shutil.copytree(package, root / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def fingerprints(root: Path) -> dict[str, str]:
    return {stage: stage_code_fingerprint(stage, root) for stage in STAGES}


@pytest.mark.parametrize(
    "edited, changes",
    [
        ("evalsuite/run/contract.py", {"training", "analysis", "report"}),  # every stage reads and writes the contract
        ("evalsuite/rules/definitions.py", {"analysis"}),  # the rules become the analysis' TFMA thresholds
        ("evalsuite/formatting.py", {"report"}),
        ("reports/markdown.py", {"report"}),
        ("reports/plots.py", {"report"}),
        ("evalsuite/data/examples.py", {"training", "analysis"}),  # the report reads examples without it (and TensorFlow)
        ("reports/tfrecord.py", {"report"}),  # how the report reads the changed examples
        ("evalsuite/data/datasets.py", {"training", "analysis"}),
        ("training/model.py", {"training"}),
        ("training/callbacks.py", {"training"}),  # imported inside a function only
        ("analysis/paired.py", {"analysis"}),
        ("analysis/evaluate.py", {"analysis"}),
        ("analysis/summary.py", {"analysis"}),
        ("gates/outputs.py", set()),
        ("gates/verdict.py", set()),
        ("evalsuite/cli.py", set()),
        ("evalsuite/registry.py", set()),
        ("pipeline/run.py", set()),
        ("benchmarks/tasks.py", set()),
    ],
)
def test_an_edit_reruns_exactly_the_stages_that_import_the_edited_file(source_tree, edited, changes):
    before = fingerprints(source_tree)
    with open(source_tree / edited, "a", encoding="utf-8") as handle:
        handle.write("\n# an added comment\n")
    after = fingerprints(source_tree)
    assert {stage for stage in STAGES if before[stage] != after[stage]} == changes


def test_a_new_import_brings_its_file_into_the_fingerprint(source_tree):
    """The list is computed: a report module that starts importing the rules reruns the report on rule edits."""
    rules = source_tree / "evalsuite" / "rules" / "definitions.py"
    before = fingerprints(source_tree)
    rules.write_text(rules.read_text("utf-8") + "\n# edited\n", "utf-8")
    assert fingerprints(source_tree)["report"] == before["report"]
    markdown = source_tree / "reports" / "markdown.py"
    markdown.write_text(markdown.read_text("utf-8") + "\n\ndef _later():\n    from evalsuite.rules import definitions\n", "utf-8")
    importing = fingerprints(source_tree)
    rules.write_text(rules.read_text("utf-8") + "\n# edited again\n", "utf-8")
    assert fingerprints(source_tree)["report"] != importing["report"]


def test_a_library_upgrade_reruns_the_stages_that_import_it(monkeypatch):
    before = fingerprints(REPO_ROOT)
    real_version = stage_code.metadata.version

    def upgraded(name: str) -> str:
        return "999.0" if name.replace("_", "-") == "tensorflow-model-analysis" else real_version(name)

    monkeypatch.setattr(stage_code.metadata, "version", upgraded)
    after = fingerprints(REPO_ROOT)
    assert {stage for stage in STAGES if before[stage] != after[stage]} == {"analysis"}


def test_the_walk_follows_function_level_relative_and_submodule_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "deep").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "entry.py": (
            "import json\n"
            "from . import sibling\n"
            "from pkg import sub\n"
            "from .deep.leaf import VALUE\n\n\n"
            "def later():\n"
            "    from pkg.lazy import thing\n"
            "    import numpy\n"
            "    return thing, numpy\n"
        ),
        "sibling.py": "from ..pkg import nested_by_dots  # resolves above the package: ignored\n",
        "sub.py": "",
        "lazy.py": "thing = 1\n",
        "unused.py": "",
        "deep/__init__.py": "",
        "deep/leaf.py": "VALUE = 1\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    found = project_imports("pkg.entry", tmp_path)
    assert set(found.modules) == {"pkg", "pkg.entry", "pkg.sibling", "pkg.sub", "pkg.lazy", "pkg.deep", "pkg.deep.leaf"}
    assert "numpy" in found.libraries and not any(name.startswith("json") for name in found.libraries)


def test_the_real_walk_finds_an_import_made_inside_a_function():
    train = REPO_ROOT / "training" / "trajectory.py"
    top_level = [node for node in ast.parse(train.read_text("utf-8")).body if isinstance(node, ast.ImportFrom)]
    assert "training.callbacks" not in {node.module for node in top_level}  # imported only inside fit_trajectory
    assert project_imports("training.train").modules["training.callbacks"] == REPO_ROOT / "training" / "callbacks.py"


def test_no_stage_imports_another_stage():
    for stage, entry in STAGE_ENTRY.items():
        own = entry.split(".")[0]
        packages = {name.split(".")[0] for name in project_imports(entry).modules}
        assert packages == {own, "evalsuite"}, stage


def test_fingerprints_are_stable():
    assert fingerprints(REPO_ROOT) == fingerprints(REPO_ROOT)
