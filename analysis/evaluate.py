"""The analysis stage: both models through one TFMA pipeline, read once.

TFMA computes per-slice metrics (overall and per true class), the
candidate-minus-baseline diffs, the paired counts (`analysis/paired.py`), the
confusion matrices and the gate's validation in the same Beam pipeline. The
results stay in TFMA's own format (`tfma.load_eval_result`) and are also
flattened into `summary.json`; the examples whose outcome changed go to
`changed.json`, and their counts must equal TFMA's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.models import ModelRef, check_saved_model, resolve_model
from analysis.thresholds import attach_thresholds, gap_cross_slicing_spec
from evalsuite import paired_stats, progress
from evalsuite.atomic import atomic_dir, write_json_atomic
from evalsuite.contract import (
    ACCURACY,
    BASELINE,
    CANDIDATE,
    CHANGED_NAME,
    CROSSENTROPY,
    EXAMPLE_COUNT,
    LABEL_KEY,
    NEWLY_RIGHT,
    NEWLY_WRONG,
    NUM_CLASSES,
    OUTPUT_KEY,
    SIGNATURE,
    SUMMARY_NAME,
    TFMA_DIR,
    VALIDATION_NAME,
    load_summary,
)
from evalsuite.errors import InputError
from evalsuite.examples import SHARD_PATTERN, read_examples, write_examples
from evalsuite.fingerprints import fingerprint, fingerprint_shards
from evalsuite.rule_settings import GateRules
from evalsuite.rules import tfma_thresholds
from evalsuite.rundir import RunDir, relative
from evalsuite.stage_code import stage_code_fingerprint

INFERENCE_BATCH_SIZE = 256
DEFAULT_RUNNER = "DirectRunner"
PAIRED_INTERVALS = "Tango score interval of the paired delta (95%)"


@dataclass(frozen=True)
class AnalysisConfig:
    baseline: str = "epochs-3"
    candidate: str = "epochs-6"
    eval_data: str | None = None
    jackknife: bool = False
    beam_args: tuple[str, ...] = ()
    seed: int = 42
    baseline_note: str | None = None  # e.g. an empty registry's rubber-stamp, carried to the verdict as a warning
    baseline_info: str | None = None  # e.g. a candidate that is the blessed model itself, carried as a note


@dataclass
class AnalysisResult:
    summary: dict
    tfma_path: Path
    reused: bool = False
    seconds: float = 0.0


def runner_of(beam_args: tuple[str, ...]) -> str:
    """The Beam runner the options name; DirectRunner when none is named."""
    for index, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and index + 1 < len(beam_args):
            return beam_args[index + 1]
    return DEFAULT_RUNNER


def with_explicit_runner(beam_args: tuple[str, ...]) -> tuple[str, ...]:
    # Since Beam 2.68 an unnamed runner may be swapped for Prism on a machine that can
    # download it: name the runner so the one that runs is the one recorded.
    if any(arg == "--runner" or arg.startswith("--runner=") for arg in beam_args):
        return tuple(beam_args)
    return (f"--runner={DEFAULT_RUNNER}", *beam_args)


def analyze(
    run: RunDir, config: AnalysisConfig, rules: GateRules, log=progress.log, force: bool = False
) -> AnalysisResult:
    """Evaluate baseline and candidate with TFMA, or reuse the results if nothing changed.

    Every input is checked before the folder is touched: bad input (a missing
    model, data without some class, an unknown Beam runner) leaves it as it
    was. `force` recomputes even when nothing changed.
    """
    started = time.perf_counter()
    baseline = resolve_model(run, config.baseline, "baseline")
    candidate = resolve_model(run, config.candidate, "candidate")
    beam_args = with_explicit_runner(config.beam_args)
    check_runner(runner_of(beam_args))
    eval_data = _eval_data(run, config.eval_data, log)
    thresholds = tfma_thresholds(rules, eval_data["examples"], eval_data["examples_per_class"])
    # Everything the EvalConfig is built from, so an unchanged analysis is recognised without TFMA.
    stage_fingerprint = fingerprint(
        baseline.fingerprint,
        candidate.fingerprint,
        {k: eval_data[k] for k in ("fingerprint", "files_fingerprint", "examples", "examples_per_class")},
        [vars(t) for t in thresholds],
        rules.key(),
        config.jackknife,
        config.seed,
        config.baseline_note,
        config.baseline_info,
        beam_args,
        stage_code_fingerprint("analysis"),
        _versions(),
    )
    record = None if force else run.reusable("analysis", stage_fingerprint)
    if record is not None:
        summary = load_summary(run.analysis_dir)
        log(f"analysis: reused TFMA results in {run.analysis_dir} (models, data and rules unchanged)")
        return AnalysisResult(summary, run.tfma_dir, reused=True, seconds=time.perf_counter() - started)

    signatures = {
        BASELINE: check_saved_model(baseline.path, "baseline"),
        CANDIDATE: check_saved_model(candidate.path, "candidate"),
    }
    # Nothing downstream may look done while the analysis changes under it.
    run.invalidate_from("analysis")
    eval_config = build_eval_config(rules, eval_data, config.jackknife)
    runner = runner_of(beam_args)
    log(
        f"analysis: TFMA on {eval_data['examples']} examples, 2 models, 11 slices, runner {runner} "
        f"(paired counts{', jackknife' if config.jackknife else ''}) ..."
    )
    with atomic_dir(run.analysis_dir) as staging:
        tfma_started = time.perf_counter()
        with progress.heartbeat("analysis: TFMA still running"):
            run_tfma(baseline, candidate, eval_config, eval_data["pattern"], staging / TFMA_DIR, beam_args, config.seed)
        tfma_seconds = time.perf_counter() - tfma_started
        summary = summarize(staging / TFMA_DIR, baseline, candidate, eval_data, config, runner)
        log(f"analysis: TFMA done in {tfma_seconds:.1f}s; listing the examples whose outcome changed ...")
        changed = changed_examples(signatures, eval_data["pattern"])
        changed["pattern"] = run.portable(eval_data["pattern"])
        _check_changed_against_tfma(changed, summary)
        write_json_atomic(staging / SUMMARY_NAME, summary)
        write_json_atomic(staging / VALIDATION_NAME, validation_as_json(staging / TFMA_DIR))
        write_json_atomic(staging / CHANGED_NAME, changed)
    seconds = time.perf_counter() - started
    run.record_stage(
        "analysis",
        {
            "fingerprint": stage_fingerprint,
            # What the gate re-checks before it trusts these results (chain of custody).
            "outputs_fingerprint": run.analysis_outputs_fingerprint(),
            "seconds": round(seconds, 3),
            "tfma_seconds": round(tfma_seconds, 3),
            "baseline": {
                "label": baseline.label,
                "path": run.portable(baseline.path),
                "fingerprint": baseline.fingerprint,
            },
            "candidate": {
                "label": candidate.label,
                "path": run.portable(candidate.path),
                "fingerprint": candidate.fingerprint,
            },
            "eval_data": {k: v for k, v in eval_data.items() if k != "pattern"},
            "pattern": run.portable(eval_data["pattern"]),
            "intervals": summary["confidence_intervals"],
            "rules": rules.key(),
            "runner": runner,
            "beam_args": list(beam_args),
            "seed": config.seed,
            "outputs": {
                "tfma": relative(run, run.tfma_dir),
                "summary": relative(run, run.analysis_dir / SUMMARY_NAME),
                "validation": relative(run, run.analysis_dir / VALIDATION_NAME),
                "changed": relative(run, run.analysis_dir / CHANGED_NAME),
            },
        },
    )
    overall_b = summary["models"][BASELINE]["overall"]["accuracy"]
    overall_c = summary["models"][CANDIDATE]["overall"]["accuracy"]
    paired = summary["paired"]["overall"]
    log(
        f"analysis: accuracy {baseline.label} {overall_b:.4f}, {candidate.label} {overall_c:.4f}; "
        f"{paired[NEWLY_RIGHT]} newly right, {paired[NEWLY_WRONG]} newly wrong ({seconds:.1f}s in all)"
    )
    return AnalysisResult(summary, run.tfma_dir, reused=False, seconds=seconds)


def _eval_data(run: RunDir, eval_data: str | None, log) -> dict:
    """The run's own evaluation examples, or PATH converted into the run folder.

    `files_fingerprint` hashes the shards' bytes as they are on disk now, so a
    replaced or truncated shard is never taken for the data that was judged.
    """

    if eval_data is None:
        record = run.require_stage("data", "evaluation examples")
        if not isinstance(record.get("pattern"), str) or not isinstance(record.get("eval_examples"), int):
            raise InputError(f"{run.manifest_path}: corrupt manifest (the data stage has no pattern or example count)")
        if not isinstance(record.get("eval_examples_per_class"), dict):
            raise InputError(f"{run.manifest_path}: corrupt manifest (the data stage has no examples per class)")
        pattern = str(run.path / record["pattern"])
        files_fingerprint = fingerprint_shards(pattern)
        if files_fingerprint is None:
            raise InputError(f"{pattern}: the run's evaluation examples are missing (rerun training)")
        if record.get("files_fingerprint") not in (None, files_fingerprint):
            raise InputError(
                f"{run.data_dir}: evaluation examples changed on disk since the data stage wrote them; "
                "rerun with --force"
            )
        per_class = record["eval_examples_per_class"]
        _require_every_class([int(c) for c, n in per_class.items() if n], record["source"])
        return {
            "source": record["source"],
            "fingerprint": record["fingerprint"],
            "files_fingerprint": files_fingerprint,
            "examples": record["eval_examples"],
            "examples_per_class": record["eval_examples_per_class"],
            "class_names": record.get("class_names"),
            "pattern": pattern,
        }
    import numpy as np

    from evalsuite.datasets import class_names_for, load_eval_split

    path = Path(eval_data)
    if path.suffix == ".tfrecord" or "*" in eval_data or (path.is_dir() and list(path.glob("*.tfrecord"))):
        pattern = str(path / "*.tfrecord") if path.is_dir() else eval_data
        _, labels, records = read_examples(pattern)
        data_fingerprint = fingerprint(*records)
        source = f"tfrecord:{pattern}"
        names = None
        _require_every_class(labels, source)
    else:
        images, labels = load_eval_split(path)
        source = f"{'idx' if path.is_dir() else 'npz'}:{path.resolve()}"
        names = class_names_for(path)
        _require_every_class(labels, source)
        data_fingerprint = fingerprint(images.tobytes(), labels.tobytes())
        folder = run.data_dir.parent / f"data-{data_fingerprint}"
        if not folder.exists():
            with atomic_dir(folder) as staging:
                write_examples(staging, images, labels)
        pattern = str(folder / SHARD_PATTERN)
    counts = {str(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))}
    log(f"analysis: evaluation data {source} - {len(labels)} examples")
    return {
        "source": source,
        "fingerprint": data_fingerprint,
        "files_fingerprint": fingerprint_shards(pattern),
        "examples": int(len(labels)),
        "examples_per_class": counts,
        "class_names": names,
        "pattern": pattern,
    }


def _require_every_class(labels, source: str) -> None:
    """Every class must have evaluation examples: a missing slice cannot be judged by any rule."""
    import numpy as np

    present = set(np.unique(labels).tolist())
    missing = [str(c) for c in range(NUM_CLASSES) if c not in present]
    if missing:
        raise InputError(
            f"{source}: no evaluation examples of class {', '.join(missing)}; "
            f"slice {LABEL_KEY}={missing[0]} is missing, so no rule on it can be judged"
        )


def check_runner(runner: str) -> None:
    """An unknown Beam runner is bad input, found before anything is written."""
    from apache_beam.runners.runner import create_runner

    try:
        create_runner(runner)
    except (ValueError, ImportError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(f"--runner={runner}: not a Beam runner this installation has ({first[:160]})") from None


def build_eval_config(rules: GateRules, eval_data: dict, jackknife: bool, paired: bool = True):
    """Baseline and candidate in one EvalConfig, sliced overall and per true class.

    `paired=False` (for the benchmark only) leaves out the paired counts and every rule's threshold.
    """
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    from analysis.paired import PAIRED_METRICS, paired_metric_configs

    # A fixed inference batch: Beam's adaptive batching starts tiny and grows. On 10,000
    # examples 256 per call took 9.9 s against 12.8 s adaptive (1,000: 10.1 s, 4,096: 11.5 s).
    model_specs = [
        cfg.ModelSpec(
            name=name,
            label_key=LABEL_KEY,
            signature_name=SIGNATURE,
            prediction_key=OUTPUT_KEY,
            is_baseline=name == BASELINE,
            inference_batch_size=INFERENCE_BATCH_SIZE,
        )
        for name in (BASELINE, CANDIDATE)
    ]
    by_metric = {ACCURACY: cfg.MetricConfig(class_name="SparseCategoricalAccuracy"), **paired_metric_configs()}
    if paired:
        attach_thresholds(by_metric, rules, eval_data["examples"], eval_data["examples_per_class"])
    per_model = [
        cfg.MetricConfig(class_name="ExampleCount"),
        by_metric[ACCURACY],
        cfg.MetricConfig(class_name="SparseCategoricalCrossentropy"),
        cfg.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
    ]
    # The paired metrics read both models' predictions of each example; they belong to the candidate.
    paired_specs = [by_metric[name] for name in PAIRED_METRICS]
    eval_config = cfg.EvalConfig(
        model_specs=model_specs,
        slicing_specs=[cfg.SlicingSpec(), cfg.SlicingSpec(feature_keys=[LABEL_KEY])],
        metrics_specs=[cfg.MetricsSpec(metrics=per_model, model_names=[BASELINE, CANDIDATE])]
        + ([cfg.MetricsSpec(metrics=paired_specs, model_names=[CANDIDATE])] if paired else []),
    )
    if paired and rules.max_gap is not None:
        eval_config.cross_slicing_specs.append(gap_cross_slicing_spec())
    if jackknife:
        eval_config.options.compute_confidence_intervals.value = True
        eval_config.options.confidence_intervals.method = cfg.ConfidenceIntervalOptions.JACKKNIFE
    return eval_config


def run_tfma(
    baseline: ModelRef, candidate: ModelRef, eval_config, pattern: str, output: Path, beam_args, seed: int = 42
) -> None:
    """One Beam pipeline: read the examples once, evaluate both models, validate."""
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions

    shared = [
        tfma.default_eval_shared_model(eval_saved_model_path=str(model.path), eval_config=eval_config, model_name=name)
        for name, model in ((BASELINE, baseline), (CANDIDATE, candidate))
    ]
    try:
        tfma.run_model_analysis(
            eval_shared_model=shared,
            eval_config=eval_config,
            data_location=pattern,
            output_path=str(output),
            pipeline_options=PipelineOptions(list(beam_args)),
            # The jackknife assigns examples to buckets at random; TFMA's only hook to seed
            # that is this argument, and without it the intervals change from run to run.
            random_seed_for_testing=seed,
        )
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        raise InputError(f"TFMA failed on {pattern}: {first[:240]}") from error


def summarize(
    tfma_path: Path, baseline: ModelRef, candidate: ModelRef, eval_data: dict, config: AnalysisConfig, runner: str
) -> dict:
    """Flatten TFMA's results to model -> slice -> metric, with diffs, paired counts and intervals."""
    import tensorflow_model_analysis as tfma

    from analysis.paired import paired_counts_from_metrics
    from evalsuite.contract import slice_ids

    models, deltas, confusion, cross_slices, paired = {}, {}, {}, {}, {}
    for name in (BASELINE, CANDIDATE):
        result = tfma.load_eval_result(str(tfma_path), model_name=name)
        per_slice = {}
        for slice_key, outputs in result.slicing_metrics:
            values = ((outputs or {}).get("") or {}).get("") or {}
            if _is_cross_slice(slice_key):
                if name == CANDIDATE and ACCURACY in values:
                    cross_slices[_slice_id(slice_key)] = {"accuracy_gap": _number(values[ACCURACY])}
                continue
            sid = _slice_id(slice_key)
            per_slice[sid] = {
                "examples": _count(values.get(EXAMPLE_COUNT)),
                "accuracy": _number(values.get(ACCURACY)),
                "crossentropy": _number(values.get(CROSSENTROPY)),
            }
            if config.jackknife:
                per_slice[sid]["accuracy_ci"] = _interval(values.get(ACCURACY))
            if name == CANDIDATE:
                counts = paired_counts_from_metrics(values, _number)
                if counts is not None:
                    paired[sid] = counts
                if f"{ACCURACY}_diff" in values:
                    deltas[sid] = {"accuracy": _number(values[f"{ACCURACY}_diff"])}
        models[name] = dict(sorted(per_slice.items(), key=lambda item: _slice_order(item[0])))
        confusion[name] = _confusion_matrices(result)
    for sid, counts in paired.items():
        n = sum(counts.values())
        if sid in deltas and n:
            low, high = paired_stats.tango_interval(counts[NEWLY_RIGHT], counts[NEWLY_WRONG], n)
            deltas[sid]["accuracy_ci"] = [round(low, 6), round(high, 6)]
            deltas[sid]["mcnemar_mid_p"] = paired_stats.mcnemar_mid_p(counts[NEWLY_RIGHT], counts[NEWLY_WRONG])
    return {
        "baseline": {"label": baseline.label, "path": str(baseline.path), "fingerprint": baseline.fingerprint},
        "candidate": {"label": candidate.label, "path": str(candidate.path), "fingerprint": candidate.fingerprint},
        "eval_data": {
            k: eval_data.get(k)
            for k in ("source", "fingerprint", "files_fingerprint", "examples", "examples_per_class", "class_names")
        },
        "confidence_intervals": PAIRED_INTERVALS + ("; per-model accuracy: TFMA jackknife" if config.jackknife else ""),
        "runner": runner,
        "slices": [sid for sid in slice_ids() if sid in models[CANDIDATE]],
        "models": models,
        "deltas": dict(sorted(deltas.items(), key=lambda item: _slice_order(item[0]))),
        "paired": dict(sorted(paired.items(), key=lambda item: _slice_order(item[0]))),
        "cross_slices": cross_slices,
        "confusion_matrices": confusion,
        "notes": [config.baseline_note] if config.baseline_note else [],
        "info": [config.baseline_info] if config.baseline_info else [],
    }


def changed_examples(signatures: dict, pattern: str) -> dict:
    """Every example the two models disagree on in outcome, with both predictions and confidences.

    Computed outside TFMA (plain batched calls of each serving signature) so the
    report can show the images; its counts are checked against TFMA's.
    """
    import numpy as np
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(pattern))
    batches = list(tf.data.TFRecordDataset(files).batch(1024).as_numpy_iterator())
    label_spec = {LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    labels = np.concatenate([tf.io.parse_example(batch, label_spec)[LABEL_KEY].numpy() for batch in batches])
    predictions = {
        role: np.concatenate([serve(tf.constant(batch))[OUTPUT_KEY].numpy() for batch in batches])
        for role, (_, serve) in signatures.items()
    }
    base_pred = predictions[BASELINE].argmax(axis=1)
    cand_pred = predictions[CANDIDATE].argmax(axis=1)
    base_right, cand_right = base_pred == labels, cand_pred == labels
    examples = []
    for index in np.flatnonzero(base_right != cand_right):
        examples.append(
            {
                "index": int(index),
                "label": int(labels[index]),
                "change": NEWLY_RIGHT if cand_right[index] else NEWLY_WRONG,
                "baseline": {
                    "class": int(base_pred[index]),
                    "confidence": round(float(predictions[BASELINE][index].max()), 4),
                },
                "candidate": {
                    "class": int(cand_pred[index]),
                    "confidence": round(float(predictions[CANDIDATE][index].max()), 4),
                },
            }
        )
    counts: dict[str, dict[str, int]] = {}
    for sid, mask in [("overall", np.ones_like(labels, dtype=bool))] + [
        (f"{LABEL_KEY}={c}", labels == c) for c in sorted(set(int(x) for x in labels))
    ]:
        counts[sid] = {
            NEWLY_RIGHT: int(np.sum(mask & cand_right & ~base_right)),
            NEWLY_WRONG: int(np.sum(mask & base_right & ~cand_right)),
        }
    return {"examples": examples, "counts": counts, "pattern": pattern}


def _check_changed_against_tfma(changed: dict, summary: dict) -> None:
    for sid, counts in changed["counts"].items():
        tfma_counts = summary["paired"].get(sid)
        if tfma_counts is None or any(tfma_counts[k] != counts[k] for k in (NEWLY_RIGHT, NEWLY_WRONG)):
            raise InputError(
                f"the examples listed as changed on {sid} ({counts}) disagree with TFMA's paired counts "
                f"({tfma_counts}); refusing to hand on an analysis that contradicts itself"
            )


def _slice_id(slice_key) -> str:
    """'overall', 'label=3' or 'overall vs label=3' for a TFMA (cross-)slice key."""
    if not slice_key:
        return "overall"
    if _is_cross_slice(slice_key):
        return f"{_slice_id(slice_key[0])} vs {_slice_id(slice_key[1])}"
    return ",".join(f"{column}={value}" for column, value in slice_key)


def _is_cross_slice(slice_key) -> bool:
    """TFMA cross-slice keys are (baseline_key, comparison_key); plain keys hold (column, value)."""
    return len(slice_key) == 2 and all(
        isinstance(part, tuple) and all(isinstance(x, tuple) for x in part) for part in slice_key
    )


def _slice_order(sid: str):
    if sid == "overall":
        return (0, 0, sid)
    _, _, value = sid.partition("=")
    return (1, int(value) if value.lstrip("-").isdigit() else 0, sid)


def _number(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, dict):
        if "boundedValue" in value:
            return _number(value["boundedValue"].get("value"))
        if "doubleValue" in value:
            return float(value["doubleValue"])
        return None
    return float(value)


def _count(value) -> int | None:
    number = _number(value)
    return None if number is None else int(round(number))


def _interval(value) -> list[float] | None:
    if isinstance(value, dict) and "boundedValue" in value:
        bounded = value["boundedValue"]
        return [float(bounded.get("lowerBound", math.nan)), float(bounded.get("upperBound", math.nan))]
    return None


def _confusion_matrices(result) -> dict[str, list[list[int]]]:
    """Per slice, a 10x10 matrix [true][predicted] from TFMA's confusion-matrix plot."""
    matrices = {}
    for slice_key, outputs in result.plots or []:
        plot = ((outputs or {}).get("") or {}).get("") or {}
        entries = None
        for value in plot.values():
            if isinstance(value, dict) and "entries" in value:
                entries = value["entries"]
            elif isinstance(value, dict):
                for inner in value.values():
                    if isinstance(inner, list) and inner and isinstance(inner[0], dict) and "entries" in inner[0]:
                        entries = inner[0]["entries"]
        if entries is None:
            continue
        matrix = [[0] * 10 for _ in range(10)]
        for entry in entries:
            actual, predicted = int(entry.get("actualClassId", 0)), int(entry.get("predictedClassId", 0))
            if 0 <= actual < 10 and 0 <= predicted < 10:
                matrix[actual][predicted] = int(round(float(entry.get("numWeightedExamples", 0))))
        matrices[_slice_id(slice_key)] = matrix
    return matrices


def _versions() -> dict:
    from importlib.metadata import version  # no TFMA import just to compare versions

    return {name: version(name) for name in ("tensorflow-model-analysis", "apache-beam", "tensorflow")}


def validation_as_json(tfma_path: Path) -> dict:
    """TFMA's ValidationResult as plain JSON, so the gate reads it without importing TFMA."""
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format

    result = tfma.load_validation_result(str(tfma_path))
    return json_format.MessageToDict(result, preserving_proto_field_name=True)
