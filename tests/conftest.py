"""Shared fixtures: tiny real data and tiny real models, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The commands quiet the libraries' own logging themselves; the tests check that they do.
os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


from evalsuite.data.datasets import Dataset, load_bundled  # noqa: E402
from evalsuite.data.files import save_npz  # noqa: E402
from tests.helpers import SEED, never_predicts, train_and_export  # noqa: E402


@pytest.fixture(scope="session")
def bundled() -> Dataset:
    return load_bundled(SEED)


@pytest.fixture(scope="session")
def tiny_npz(bundled, tmp_path_factory) -> Path:
    """600 train / 300 eval real digits as an .npz, stratified."""
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    save_npz(path, bundled.subset(600, 300, SEED))
    return path


@pytest.fixture(scope="session")
def tiny_models(bundled, tmp_path_factory) -> dict[str, Path]:
    """weak: 1 epoch on 300 digits; strong: 1 epoch on 1,500; never_sevens: strong that never says 7."""
    root = tmp_path_factory.mktemp("models")
    small = bundled.subset(300, None, SEED)
    large = bundled.subset(1500, None, SEED)
    strong = train_and_export(large.x_train, large.y_train, 1, root / "strong")
    return {
        "weak": train_and_export(small.x_train, small.y_train, 1, root / "weak"),
        "strong": strong,
        "never_sevens": never_predicts(strong, 7, root / "never_sevens"),
    }


@pytest.fixture(scope="session")
def eval_npz(bundled, tmp_path_factory) -> Path:
    """Evaluation digits only (50 per class) from the bundled test split."""
    subset = bundled.subset(None, 500, SEED)
    path = tmp_path_factory.mktemp("eval") / "eval.npz"
    save_npz(path, Dataset(subset.x_test[:10], subset.y_test[:10], subset.x_test, subset.y_test, "eval"))
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_npz) -> Path:
    """A whole pipeline run on tiny data: 1- and 2-epoch models, analysed, gated, reported."""
    from pipeline.run import main as pipeline_main

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    # In this process (TensorFlow and TFMA are imported once); the slow tests run it as its own command.
    code = pipeline_main(
        ["--run-dir", str(run_dir), "--data", str(tiny_npz), "--epochs", "1", "2", "--seed", str(SEED), "-q"]
    )
    assert code == 0
    return run_dir


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run, for tests that change or break it."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy, ignore=shutil.ignore_patterns(".lock"), symlinks=True)
    return copy


ALL_RULES = """
[overall]
min_improvement = 0.0
[per_class]
max_drop = 0.03
[gap_to_overall]
max_gap = 0.5
[churn]
max_newly_wrong_rate = 0.2
[significance]
require = true
alpha = 0.05
"""
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@pytest.fixture(scope="session")
def planted(tmp_path_factory, tiny_models, eval_npz):
    """strong -> strong that never says 7, every rule on, the classes named (7 is Sneaker) beside the data."""
    import shutil

    from tests.helpers import analyse_and_gate

    root = tmp_path_factory.mktemp("planted")
    data = root / "named"
    data.mkdir()
    shutil.copy(eval_npz, data / "eval.npz")
    (data / "class_names.txt").write_text("\n".join(FASHION_NAMES) + "\n")
    rules = root / "all-rules.toml"
    rules.write_text(ALL_RULES)
    code = analyse_and_gate(
        root / "run", tiny_models["strong"], tiny_models["never_sevens"], data / "eval.npz", "--rules", str(rules)
    )
    return root / "run", code, rules
