"""The analysis stage: both models through one TFMA pipeline, read once.

TFMA computes per-slice metrics (overall and per true digit), the
candidate-minus-baseline diffs, jackknife confidence intervals and the gate's
validation in the same Beam pipeline. The results stay in TFMA's own format
(`tfma.load_eval_result`) and are also flattened into `summary.json`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.models import ModelRef, check_saved_model, resolve_model
from evalsuite import progress
from evalsuite.errors import InputError
from evalsuite.examples import SHARD_PATTERN, read_examples, write_examples
from evalsuite.rundir import RunDir, atomic_dir, code_fingerprint, fingerprint, relative, write_json_atomic
from gates.rules import GateRules, gap_cross_slicing_spec, is_cross_slice, slice_id, tfma_metric_config
from training.model import OUTPUT_KEY, SIGNATURE

BASELINE, CANDIDATE = "baseline", "candidate"
ACCURACY = "sparse_categorical_accuracy"
CROSSENTROPY = "sparse_categorical_crossentropy"
EXAMPLE_COUNT = "example_count"
SUMMARY_NAME = "summary.json"
VALIDATION_NAME = "validation.json"
TFMA_DIR = "tfma"
INFERENCE_BATCH_SIZE = 256


@dataclass(frozen=True)
class AnalysisConfig:
    baseline: str = "epochs-3"
    candidate: str = "epochs-6"
    eval_data: str | None = None
    confidence_intervals: bool = True
    beam_args: tuple[str, ...] = ()
    seed: int = 42


@dataclass
class AnalysisResult:
    summary: dict
    tfma_path: Path
    reused: bool = False
    seconds: float = 0.0


def analyze(run: RunDir, config: AnalysisConfig, rules: GateRules, log=progress.log) -> AnalysisResult:
    """Evaluate baseline and candidate with TFMA, or reuse the results if nothing changed."""
    started = time.perf_counter()
    baseline = resolve_model(run, config.baseline, "baseline")
    candidate = resolve_model(run, config.candidate, "candidate")
    eval_data = _eval_data(run, config.eval_data, log)
    # Everything the EvalConfig is built from, so an unchanged analysis is recognised without TFMA.
    stage_fingerprint = fingerprint(
        baseline.fingerprint,
        candidate.fingerprint,
        {k: eval_data[k] for k in ("fingerprint", "examples", "examples_per_class")},
        rules_key(rules),
        config.confidence_intervals,
        config.seed,
        code_fingerprint("analysis", "gates", "evalsuite", "training"),
        _versions(),
    )
    record = run.reusable("analysis", stage_fingerprint)
    if record is not None:
        summary = load_summary(run)
        log(f"analysis: reused TFMA results in {run.analysis_dir} (models, data and rules unchanged)")
        return AnalysisResult(summary, run.analysis_dir / TFMA_DIR, reused=True, seconds=time.perf_counter() - started)

    run.forget_stage("analysis")
    run.forget_stage("gate")
    check_saved_model(baseline.path, "baseline")
    check_saved_model(candidate.path, "candidate")
    eval_config = build_eval_config(rules, eval_data, config.confidence_intervals)
    with atomic_dir(run.analysis_dir) as staging:
        tfma_started = time.perf_counter()
        run_tfma(
            baseline, candidate, eval_config, eval_data["pattern"], staging / TFMA_DIR, config.beam_args, config.seed
        )
        tfma_seconds = time.perf_counter() - tfma_started
        summary = summarize(staging / TFMA_DIR, baseline, candidate, eval_data, config)
        write_json_atomic(staging / SUMMARY_NAME, summary)
        write_json_atomic(staging / VALIDATION_NAME, validation_as_json(staging / TFMA_DIR))
    seconds = time.perf_counter() - started
    run.record_stage(
        "analysis",
        {
            "fingerprint": stage_fingerprint,
            "seconds": round(seconds, 3),
            "tfma_seconds": round(tfma_seconds, 3),
            "baseline": {"label": baseline.label, "path": str(baseline.path)},
            "candidate": {"label": candidate.label, "path": str(candidate.path)},
            "eval_data": eval_data,
            "confidence_intervals": "jackknife" if config.confidence_intervals else None,
            "rules": rules_key(rules),
            "beam_args": list(config.beam_args),
            "seed": config.seed,
            "outputs": {
                "tfma": relative(run, run.analysis_dir / TFMA_DIR),
                "summary": relative(run, run.analysis_dir / SUMMARY_NAME),
                "validation": relative(run, run.analysis_dir / VALIDATION_NAME),
            },
        },
    )
    overall_b = summary["models"][BASELINE]["overall"]["accuracy"]
    overall_c = summary["models"][CANDIDATE]["overall"]["accuracy"]
    log(
        f"analysis: TFMA on {eval_data['examples']} examples, 2 models, {len(summary['slices'])} slices "
        f"in {tfma_seconds:.1f}s - accuracy {baseline.label} {overall_b:.4f}, {candidate.label} {overall_c:.4f}"
    )
    return AnalysisResult(summary, run.analysis_dir / TFMA_DIR, reused=False, seconds=seconds)


def rules_key(rules: GateRules) -> dict:
    """The part of the rules that shapes TFMA's validation (not where they came from)."""
    return {k: v for k, v in rules.as_dict().items() if k != "source"}


def _eval_data(run: RunDir, eval_data: str | None, log) -> dict:
    """The run's own evaluation examples, or PATH converted into the run folder."""
    if eval_data is None:
        record = run.require_stage("data", "evaluation examples")
        return {
            "source": record["source"],
            "fingerprint": record["fingerprint"],
            "examples": record["eval_examples"],
            "examples_per_class": record["eval_examples_per_class"],
            "pattern": str(run.path / record["pattern"]),
        }
    import numpy as np

    from evalsuite.datasets import load_eval_split

    path = Path(eval_data)
    if path.suffix == ".tfrecord" or "*" in eval_data or (path.is_dir() and list(path.glob("*.tfrecord"))):
        pattern = str(path / "*.tfrecord") if path.is_dir() else eval_data
        _, labels, records = read_examples(pattern)
        data_fingerprint = fingerprint(*records)
        source = f"tfrecord:{pattern}"
    else:
        images, labels = load_eval_split(path)
        data_fingerprint = fingerprint(images.tobytes(), labels.tobytes())
        folder = run.data_dir.parent / f"data-{data_fingerprint}"
        if not folder.exists():
            with atomic_dir(folder) as staging:
                write_examples(staging, images, labels)
        pattern = str(folder / SHARD_PATTERN)
        source = f"{'idx' if path.is_dir() else 'npz'}:{path.resolve()}"
    counts = {str(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))}
    log(f"analysis: evaluation data {source} - {len(labels)} examples")
    return {
        "source": source,
        "fingerprint": data_fingerprint,
        "examples": int(len(labels)),
        "examples_per_class": counts,
        "pattern": pattern,
    }


def build_eval_config(rules: GateRules, eval_data: dict, confidence_intervals: bool):
    """Baseline and candidate in one EvalConfig, sliced overall and per true digit."""
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    # A fixed inference batch: Beam's adaptive batching starts tiny and grows. On 10,000
    # examples 256 per call took 9.9 s against 12.8 s adaptive (1,000: 10.1 s, 4,096: 11.5 s).
    model_specs = [
        cfg.ModelSpec(
            name=name,
            label_key="label",
            signature_name=SIGNATURE,
            prediction_key=OUTPUT_KEY,
            is_baseline=name == BASELINE,
            inference_batch_size=INFERENCE_BATCH_SIZE,
        )
        for name in (BASELINE, CANDIDATE)
    ]
    metrics = [
        cfg.MetricConfig(class_name="ExampleCount"),
        tfma_metric_config(rules, eval_data["examples"], eval_data["examples_per_class"]),
        cfg.MetricConfig(class_name="SparseCategoricalCrossentropy"),
        cfg.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
    ]
    eval_config = cfg.EvalConfig(
        model_specs=model_specs,
        slicing_specs=[cfg.SlicingSpec(), cfg.SlicingSpec(feature_keys=["label"])],
        metrics_specs=[cfg.MetricsSpec(metrics=metrics, model_names=[BASELINE, CANDIDATE])],
    )
    if rules.max_gap is not None:
        eval_config.cross_slicing_specs.append(gap_cross_slicing_spec())
    if confidence_intervals:
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
    tfma_path: Path, baseline: ModelRef, candidate: ModelRef, eval_data: dict, config: AnalysisConfig
) -> dict:
    """Flatten TFMA's results to model -> slice -> metric, with intervals and diffs."""
    import tensorflow_model_analysis as tfma

    models, deltas, confusion, cross_slices = {}, {}, {}, {}
    slices: list[str] = []
    for name in (BASELINE, CANDIDATE):
        result = tfma.load_eval_result(str(tfma_path), model_name=name)
        per_slice = {}
        for slice_key, outputs in result.slicing_metrics:
            values = ((outputs or {}).get("") or {}).get("") or {}
            if is_cross_slice(slice_key):
                if name == CANDIDATE and ACCURACY in values:
                    cross_slices[slice_id(slice_key)] = {"accuracy_gap": _number(values[ACCURACY])}
                continue
            sid = slice_id(slice_key)
            per_slice[sid] = {
                "examples": _number(values.get(EXAMPLE_COUNT)),
                "accuracy": _number(values.get(ACCURACY)),
                "accuracy_ci": _interval(values.get(ACCURACY)),
                "crossentropy": _number(values.get(CROSSENTROPY)),
            }
            if name == CANDIDATE and f"{ACCURACY}_diff" in values:
                deltas[sid] = {
                    "accuracy": _number(values[f"{ACCURACY}_diff"]),
                    "accuracy_ci": _interval(values[f"{ACCURACY}_diff"]),
                }
        models[name] = dict(sorted(per_slice.items(), key=lambda item: _slice_order(item[0])))
        slices = list(models[name])
        confusion[name] = _confusion_matrices(result)
    return {
        "baseline": {"label": baseline.label, "path": str(baseline.path)},
        "candidate": {"label": candidate.label, "path": str(candidate.path)},
        "eval_data": {k: eval_data[k] for k in ("source", "fingerprint", "examples", "examples_per_class")},
        "confidence_intervals": "jackknife (95%)" if config.confidence_intervals else None,
        "slices": slices,
        "models": models,
        "deltas": dict(sorted(deltas.items(), key=lambda item: _slice_order(item[0]))),
        "cross_slices": cross_slices,
        "confusion_matrices": confusion,
    }


def load_summary(run: RunDir) -> dict:
    import json

    path = run.analysis_dir / SUMMARY_NAME
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing analysis summary (run the analysis stage)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path}: corrupt analysis summary ({error})") from None


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
        matrices[slice_id(slice_key)] = matrix
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
