"""The training stage: evaluation examples on disk, then seeded runs exported.

By default the 3-epoch model is a snapshot of the 6-epoch run taken after its
third epoch: with op determinism on, that is bitwise the model a separate
3-epoch run from the same seed gives (tests/test_training.py proves it on the
machine it runs on), for the price of one run. `independent_runs=True` trains
each run on its own. Either way every run gets its own complete TensorBoard
logs and its own SavedModel.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evalsuite import progress
from evalsuite.data import slice_features
from evalsuite.data.datasets import KERAS_CACHE, Dataset, load_dataset, source_identity
from evalsuite.data.examples import SHARD_PATTERN, write_examples
from evalsuite.data.split_identity import split_identity
from evalsuite.errors import InputError
from evalsuite.run.atomic import atomic_dir
from evalsuite.run.contract import DEFAULT_EPOCHS, DEFAULT_SEED
from evalsuite.run.fingerprints import fingerprint, fingerprint_content, fingerprint_shards, fingerprint_tree
from evalsuite.run.folder import RunDir, relative
from evalsuite.run.stage_code import stage_code_fingerprint
from training.model import (
    DEFAULT_OPTIMIZER,
    STEPS_PER_EXECUTION,
    model_fingerprint,
    scale_images,
)
from training.trajectory import fit_trajectory, set_determinism

MAX_SEED = 2**32 - 1
MAX_SEEDS = 50
# Settings that do not shape the models: where the config came from, what to slice by, how loud.
NOT_FINGERPRINTED = ("data", "verbose", "class_names", "slice_features", "config_file", "config_origins")


@dataclass(frozen=True)
class TrainConfig:
    data: str = "auto"
    seed: int = DEFAULT_SEED
    # How many seeds of the recipe to train: seed, seed + 1, ... Every one trains on the
    # split `seed` draws, so their examples line up and their verdicts can be pooled.
    seeds: int = 1
    epochs: tuple[int, ...] = DEFAULT_EPOCHS
    batch_size: int = 32
    histogram_freq: int = 1
    independent_runs: bool = False
    train_limit: int | None = None
    eval_limit: int | None = None
    steps_per_execution: int = STEPS_PER_EXECUTION
    class_names: tuple[str, ...] | None = None
    model: str = "mlp"
    optimizer: str = DEFAULT_OPTIMIZER
    learning_rate: float | None = None
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    # Features of the evaluation data to slice by; they shape the analysis, not the models.
    slice_features: tuple[str, ...] = ()
    config_file: str = "built-in defaults"
    config_origins: tuple[tuple[str, str], ...] = ()  # (key, "file" | "default" | the flag that set it)
    verbose: int = 1

    def __post_init__(self):
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"--seed: must be in 0..{MAX_SEED}, got {self.seed}")
        if not 1 <= self.seeds <= MAX_SEEDS:
            raise InputError(f"--seeds: must be in 1..{MAX_SEEDS}, got {self.seeds}")
        if self.seed + self.seeds - 1 > MAX_SEED:
            raise InputError(f"--seeds: seeds {self.seed}..{self.seed + self.seeds - 1} go past {MAX_SEED}")
        for flag, limit in (("--train-limit", self.train_limit), ("--eval-limit", self.eval_limit)):
            if limit is not None and limit < 2:
                raise InputError(f"{flag}: must be at least 2 (one example per class), got {limit}")
        if any(e > 1000 for e in self.epochs):
            raise InputError(f"--epochs: at most 1000, got {max(self.epochs)}")
        if self.steps_per_execution < 1:
            raise InputError(f"--steps-per-execution: must be positive, got {self.steps_per_execution}")
        if not self.epochs or any(e < 1 for e in self.epochs) or len(set(self.epochs)) != len(self.epochs):
            raise InputError(f"--epochs: need distinct positive epoch counts, got {list(self.epochs)}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size: must be positive, got {self.batch_size}")
        if self.learning_rate is not None and not 0 < self.learning_rate <= 10:
            raise InputError(f"--learning-rate: must be in (0, 10], got {self.learning_rate}")
        if self.channels not in (None, 1, 3):
            raise InputError(f"--channels: 1 (grey) or 3 (colour), got {self.channels}")


@dataclass
class TrainResult:
    data: dict
    runs: dict[str, dict] = field(default_factory=dict)
    reused: bool = False
    seconds: float = 0.0


def train(run: RunDir, config: TrainConfig, log=progress.log, force: bool = False) -> TrainResult:
    """Prepare evaluation examples and train/export one model per epoch count.

    When the data files, settings and code are unchanged, nothing is decoded,
    trained or even imported: the run folder's models are reused. `force`
    writes the examples and trains again, reusing nothing.
    """
    started = time.perf_counter()
    spec = _resolve_auto(run, config.data, log)
    if spec not in ("auto", "keras", "bundled"):
        run.refuse_input_inside(spec, "--data")
    settings = {k: v for k, v in asdict(config).items() if k not in NOT_FINGERPRINTED}
    if config.seeds == 1:
        del settings["seeds"]  # one seed is the run as it always was, fingerprint included
    limits = [config.train_limit, config.eval_limit]
    if config.image_size is not None or config.channels is not None:
        limits += [config.image_size, config.channels]
    if config.slice_features:
        limits += [list(config.slice_features)]
    identity = source_identity(spec, config.seed)
    model_source = model_fingerprint(config.model)

    data_record = run.stage("data")
    if (
        not force
        and identity is not None
        and data_record
        and data_record.get("input_fingerprint") == fingerprint(identity, limits)
        # New --class-names are applied: the data stage is redone below (the models stay, names do not shape them).
        and (config.class_names is None or data_record.get("class_names") == list(config.class_names))
    ):
        record = run.reusable("training", _stage_fingerprint(data_record, settings, model_source))
        if (
            record is not None
            and run.reusable("data", data_record["fingerprint"])
            and data_record.get("files_fingerprint") == _shards_fingerprint(run.data_dir)
            and _models_intact(run, record)
        ):
            log(f"data: reused {data_record['source']} (fingerprint {data_record['fingerprint']})")
            log(f"training: reused {', '.join(record['runs'])} (code, config, seed and data unchanged)")
            return TrainResult(data_record, record["runs"], reused=True, seconds=time.perf_counter() - started)

    dataset = load_dataset(
        spec,
        config.seed,
        log=log,
        image_size=config.image_size,
        channels=config.channels,
        features=config.slice_features,
    )
    if config.class_names:
        dataset = dataset.named(config.class_names, "--class-names")
    resolved = _resolved_spec(spec, dataset)
    split = split_identity(dataset, config.seed)  # before any subset: what the split is drawn from
    if config.train_limit or config.eval_limit:
        dataset = dataset.subset(config.train_limit, config.eval_limit, config.seed)
    resolved_identity = source_identity(resolved, config.seed)
    check_before_writing(config, dataset.spec)
    data_record = _prepare_examples(
        run,
        dataset,
        log,
        requested=config.data,
        spec=resolved,
        input_fingerprint=None if resolved_identity is None else fingerprint(resolved_identity, limits),
        slice_counts=slice_features.value_counts(dataset.features),
        force=force,
        split=split,
    )
    stage_fingerprint = _stage_fingerprint(data_record, settings, model_source)
    record = None if force else run.reusable("training", stage_fingerprint)
    if record is not None and _models_intact(run, record):
        log(f"training: reused {', '.join(record['runs'])} (code, config, seed and data unchanged)")
        return TrainResult(data_record, record["runs"], reused=True, seconds=time.perf_counter() - started)

    # Nothing downstream may look done while its models are being replaced.
    run.invalidate_from("training")
    set_determinism(config.seed)
    data_spec = dataset.spec
    x_train, x_test = scale_images(dataset.x_train, data_spec), scale_images(dataset.x_test, data_spec)
    ordered = sorted(config.epochs)
    runs: dict[str, dict] = {}
    for seed in recipe_seeds(config):
        if config.independent_runs:
            for epochs in ordered:
                set_determinism(seed)
                runs.update(
                    fit_trajectory(run, config, data_spec, x_train, dataset.y_train, x_test, dataset.y_test, [epochs], log, seed)
                )
        else:
            if seed != config.seed:  # the first seed's generators were seeded above, as one seed always was
                set_determinism(seed)
            runs.update(
                fit_trajectory(run, config, data_spec, x_train, dataset.y_train, x_test, dataset.y_test, ordered, log, seed)
            )

    _remove_other_seeds(run, runs)
    seconds = time.perf_counter() - started
    run.record_stage(
        "training",
        {
            "fingerprint": stage_fingerprint,
            "seconds": round(seconds, 3),
            "config": settings,
            "config_file": config.config_file,
            "config_origins": dict(config.config_origins),
            **({"seeds": recipe_seeds(config)} if config.seeds > 1 else {}),
            "runs": runs,
            "outputs": {name: [info["saved_model"], info["keras_model"], info["logs"]] for name, info in runs.items()},
        },
    )
    # The time the manifest keeps and the report shows, with what it covers.
    log(
        f"training: the whole stage took {seconds:.1f}s "
        "(loading the data, writing the evaluation examples, fitting and exporting)"
    )
    return TrainResult(data_record, runs, reused=False, seconds=seconds)


def check_before_writing(config: TrainConfig, spec) -> None:
    """What training will need, checked before its first write: bad input leaves the run folder as it was."""
    from training.factory_check import check_factory
    from training.model import factory_source, resolve_optimizer

    resolve_optimizer(config.optimizer, config.learning_rate)
    if factory_source(config.model) is not None:
        check_factory(config.model, spec)


def recipe_seeds(config: TrainConfig) -> list[int]:
    """The training seeds of the recipe: the first is `--seed`, whose models keep the plain names."""
    return [config.seed + offset for offset in range(config.seeds)]


def _stage_fingerprint(data_record: dict, settings: dict, model_source: str | None) -> str:
    # The code fingerprint covers the versions of the libraries training imports too; a
    # user's model factory is covered by its source file's bytes.
    parts = [data_record["fingerprint"], settings, stage_code_fingerprint("training")]
    return fingerprint(*parts, model_source) if model_source is not None else fingerprint(*parts)


def _resolve_auto(run: RunDir, spec: str, log=progress.log) -> str:
    """'auto' sticks, within one run folder, to what it resolved to the first time, or to the data the
    folder was made from: a rerun without --data never swaps a user's data for the bundled digits."""
    if spec != "auto":
        return spec
    record = run.stage("data")
    if record and record.get("requested") == "auto" and record.get("spec") in ("keras", "bundled"):
        return record["spec"]
    if record and record.get("requested") not in (None, "auto"):
        log(f"data: --data auto keeps this run folder's data, {record['requested']} (name other data to change it)")
        return record["requested"]
    return "keras" if KERAS_CACHE.is_file() else "auto"


def _resolved_spec(spec: str, dataset: Dataset) -> str:
    if spec != "auto":
        return spec
    return "keras" if dataset.source.startswith("keras:") else "bundled"


def _prepare_examples(
    run: RunDir,
    dataset: Dataset,
    log,
    requested: str,
    spec: str,
    input_fingerprint: str | None,
    slice_counts: dict,
    force: bool = False,
    split: dict | None = None,
) -> dict:
    # Which features the analysis slices by is the data stage's word to later stages.
    described = {**dataset.describe(), "slice_features": slice_counts}
    record = None if force else run.reusable("data", described["fingerprint"])
    if record is not None and record.get("features_fingerprint") != described["features_fingerprint"]:
        record = None  # the images are the same, their slice features are not: the examples are written again
    if record is not None and record.get("files_fingerprint") != _shards_fingerprint(run.data_dir):
        log(f"data: evaluation examples in {run.data_dir} changed on disk; writing them again")
        record = None
    relabelled = ("class_names", "data_spec", "slice_features")
    if record is not None and any(record.get(key) != described[key] for key in relabelled):
        run.invalidate_from("analysis")
        run.update_stage("data", input_fingerprint=input_fingerprint, **{key: described[key] for key in relabelled})
        record = run.stage("data")
    if record is not None and split is not None and record.get("split") != split:
        # Which split the examples come from describes them; it changes nothing they are judged on.
        run.update_stage("data", split=split)
        record = run.stage("data")
    if record is None:
        started = time.perf_counter()
        final = run.data_dir
        run.forget_stage("data")
        run.invalidate_from("analysis")
        with atomic_dir(final) as staging:
            write_examples(staging, dataset.x_test, dataset.y_test, dataset.features)
        record = {
            **described,
            "files_fingerprint": _shards_fingerprint(final),
            "requested": requested,
            "spec": spec,
            "input_fingerprint": input_fingerprint,
            # The split's identity (evalsuite/data/split_identity.py): a blessing of these models carries it.
            "split": split,
            "outputs": {"eval_examples": relative(run, final)},
            "pattern": f"{relative(run, final)}/{SHARD_PATTERN}",
            "seconds": round(time.perf_counter() - started, 3),
        }
        run.record_stage("data", record)
        log(
            f"data: {described['source']} - {described['train_examples']} train, "
            f"{described['eval_examples']} eval examples, {dataset.spec.describe()} "
            f"(fingerprint {described['fingerprint']}) "
            f"written to {final} in {record['seconds']:.1f}s"
        )
    else:
        log(f"data: reused evaluation examples in {run.data_dir} (fingerprint {described['fingerprint']})")
    return record


def _models_intact(run: RunDir, record: dict) -> bool:
    """Every exported model is still the one training wrote (none swapped or edited since)."""
    for name, info in record.get("runs", {}).items():
        folder = run.model_dir(name)
        if folder.is_symlink() or not folder.is_dir() or info.get("fingerprint") != fingerprint_tree(folder):
            return False
        keras_file = run.keras_model_path(name)
        if keras_file.is_symlink() or not keras_file.is_file():
            return False
        if info.get("keras_fingerprint") != fingerprint_content(keras_file):
            return False
    return True


def _shards_fingerprint(folder: Path) -> str | None:
    """The evaluation shards' bytes as they are on disk now (None when there are none)."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    return fingerprint_shards(folder / SHARD_PATTERN)


def _remove_other_seeds(run: RunDir, runs: dict) -> None:
    """A recipe's further seeds this training did not produce (an earlier --seeds N) leave with it:
    TensorBoard and the registry must not take them for this run's."""
    import shutil

    from evalsuite.run.contract import seed_of

    for folder in (run.models_dir, run.logs_root):
        for path in folder.glob("epochs-*-seed-*") if folder.is_dir() else []:
            name = path.name.removesuffix(".keras")
            if seed_of(name) is not None and name not in runs:
                path.unlink() if path.is_file() or path.is_symlink() else shutil.rmtree(path)
