"""Find a model by run name or path (a SavedModel, or a .keras file wrapped into one) and check TFMA can use it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.keyword_signature import KeywordSignature
from evalsuite.data.spec import DataSpec
from evalsuite.errors import InputError
from evalsuite.run.contract import IMAGE_KEY, OUTPUT_KEY, SIGNATURE
from evalsuite.run.fingerprints import fingerprint_tree
from evalsuite.run.folder import RunDir
from evalsuite.run.literal_paths import without_glob_characters


@dataclass(frozen=True)
class ModelRef:
    """A model to evaluate: what the user called it and where its SavedModel is."""

    label: str
    role: str
    path: Path
    fingerprint: str


def resolve_model(run: RunDir, name_or_path: str, role: str) -> ModelRef:
    """`epochs-6` (a model of this run), a path to a SavedModel folder, or a `.keras` file.

    A `.keras` file is checked against the run's data spec and wrapped into the
    serving contract inside the run folder (`models/keras-<its fingerprint>/`,
    made once per file content).

    A model of this run must be the one training finished and recorded: a
    model swapped in since, or one whose training never finished, is refused.
    """
    if not name_or_path:
        raise InputError(f"--{role}: empty model name")
    is_plain_name = "/" not in name_or_path and not name_or_path.startswith(".")
    if is_plain_name and (run.model_dir(name_or_path).exists() or run.model_dir(name_or_path).is_symlink()):
        path = run.model_dir(name_or_path)
        root = run.models_dir.resolve()
        if root not in path.resolve().parents:
            raise InputError(f"{path}: {role} model resolves outside the run folder ({path.resolve()})")
        record = run.require_stage("training", "training")
        info = record.get("runs", {}).get(name_or_path)
        if info is None:
            raise InputError(f"{path}: {role} model {name_or_path!r} is not one this run's training produced")
        model_fingerprint = fingerprint_tree(path)
        if info.get("fingerprint") not in (None, model_fingerprint):
            raise InputError(
                f"{path}: {role} model changed since training exported it; rerun training (or the pipeline)"
            )
        return ModelRef(label=name_or_path, role=role, path=path.resolve(), fingerprint=model_fingerprint)
    elif Path(name_or_path).is_file() and name_or_path.endswith(".keras"):
        path = wrap_keras_file(run, Path(name_or_path), role)
        return ModelRef(label=name_or_path, role=role, path=path.resolve(), fingerprint=fingerprint_tree(path))
    elif Path(name_or_path).exists():
        path = Path(name_or_path)
    elif is_plain_name:
        known = sorted(p.name for p in run.models_dir.glob("*") if p.is_dir() and not p.name.startswith("."))
        hint = f" (this run has: {', '.join(known)})" if known else " (this run folder has no models; train first)"
        raise InputError(f"{run.model_dir(name_or_path)}: no {role} model named {name_or_path!r}{hint}")
    else:
        raise InputError(f"{name_or_path}: {role} model not found")
    if not path.is_dir() or not (path / "saved_model.pb").is_file():
        raise InputError(f"{path}: {role} model is not a SavedModel (no saved_model.pb)")
    return ModelRef(label=name_or_path, role=role, path=path.resolve(), fingerprint=fingerprint_tree(path))


def wrap_keras_file(run: RunDir, keras_file: Path, role: str) -> Path:
    """The SavedModel serving `keras_file` on the run's data spec, written once into the run folder."""
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.atomic import atomic_dir
    from evalsuite.run.fingerprints import fingerprint, fingerprint_content
    from evalsuite.run.serving import check_fits, export_saved_model

    spec = recorded_spec(run.stage("data"), str(run.manifest_path))
    folder = run.models_dir / f"keras-{fingerprint(fingerprint_content(keras_file), spec.as_dict())}"
    if (folder / "saved_model.pb").is_file():
        return folder
    from evalsuite.data.zip_bounds import check_zip_bounds

    check_zip_bounds(keras_file, f"{role} .keras file")  # before Keras inflates it into memory
    import keras

    try:
        model = keras.models.load_model(str(keras_file), compile=False)
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(f"{keras_file}: {role} .keras file does not load ({first[:160]})") from None
    check_fits(model, spec, f"{keras_file}: {role}")
    run.models_dir.mkdir(parents=True, exist_ok=True)
    with atomic_dir(folder) as staging:
        export_saved_model(model, staging, spec)
    return folder


def check_saved_model(path: Path, role: str, spec: DataSpec) -> None:
    """Fail closed on anything but a SavedModel with our serving signature and output, fitting the data spec.

    The signature is called once on an example of the spec's shape: a model
    made for other images says so in one line here, not deep inside TFMA.
    """
    import tensorflow as tf

    if not path.is_dir() or not (path / "saved_model.pb").is_file():
        raise InputError(f"{path}: {role} model is not a SavedModel (no saved_model.pb)")
    try:
        with without_glob_characters(path) as readable:
            loaded = tf.saved_model.load(str(readable))
    except Exception as error:
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise InputError(f"{path}: {role} SavedModel does not load ({first[:160]})") from None
    signature = loaded.signatures.get(SIGNATURE)
    if signature is None:
        raise InputError(f"{path}: {role} SavedModel has no {SIGNATURE!r} signature")
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1 or next(iter(inputs.values())).dtype != tf.string:
        raise InputError(f"{path}: {role} {SIGNATURE!r} must take one batch of serialized tf.Example")
    outputs = signature.structured_outputs
    if OUTPUT_KEY not in outputs:
        raise InputError(f"{path}: {role} {SIGNATURE!r} has no {OUTPUT_KEY!r} output (has {', '.join(outputs)})")
    shape = outputs[OUTPUT_KEY].shape
    if shape.rank != 2 or shape[-1] != spec.num_classes:
        raise InputError(
            f"{path}: {role} output {OUTPUT_KEY!r} has shape {shape}, expected (None, {spec.num_classes}): "
            f"the run's data spec is {spec.describe()}"
        )
    signature = KeywordSignature(signature)  # called with its one input by name: no costly failed binding
    probe = tf.train.Example()
    probe.features.feature[IMAGE_KEY].bytes_list.value.append(bytes(spec.image_bytes))
    try:
        signature(tf.constant([probe.SerializeToString()]))
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(
            f"{path}: {role} model does not take the run's images ({spec.describe()}, "
            f"{spec.image_bytes} bytes each): {first[:160]}"
        ) from None


@dataclass(frozen=True)
class RecipeSeed:
    """One seed's pair of models in a recipe run, and what TFMA calls them."""

    seed: int
    baseline: ModelRef
    candidate: ModelRef
    baseline_name: str
    candidate_name: str


def recipe_seeds(run: RunDir, baseline: ModelRef, candidate: ModelRef) -> list[RecipeSeed]:
    """Every seed's pair when the candidate is a model of a run trained from several seeds (`--seeds N`).

    The first is the pair given; each further seed's candidate is the model of
    its seed with the candidate's epochs, and so is its baseline when the
    baseline is a model of this run. A baseline from elsewhere (a path, the
    registry) is every seed's baseline. Empty when there is one seed.
    """
    from evalsuite.run.contract import BASELINE, CANDIDATE, run_name

    record = run.stage("training") or {}
    seeds, runs = record.get("seeds") or [], record.get("runs") or {}
    if len(seeds) < 2 or candidate.label not in runs or "seed" in runs[candidate.label]:
        return []
    if baseline.label in runs and "seed" in runs[baseline.label]:
        raise InputError(
            f"--baseline {baseline.label}: a further seed's model cannot be every seed's baseline; "
            f"name the first seed's model (each seed then meets its own), or give a path"
        )
    own_baseline = baseline.label in runs
    pairs = [RecipeSeed(seeds[0], baseline, candidate, BASELINE, CANDIDATE)]
    for seed in seeds[1:]:
        cand = resolve_model(run, run_name(runs[candidate.label]["epochs"], seed), CANDIDATE)
        base = (
            resolve_model(run, run_name(runs[baseline.label]["epochs"], seed), BASELINE) if own_baseline else baseline
        )
        pairs.append(
            RecipeSeed(
                seed, base, cand, f"{BASELINE}-seed-{seed}" if own_baseline else BASELINE, f"{CANDIDATE}-seed-{seed}"
            )
        )
    return pairs
