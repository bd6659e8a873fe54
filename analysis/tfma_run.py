"""The TFMA run: both models in one EvalConfig, sliced overall and per class, in one Beam pipeline.

The runner is always named (DirectRunner unless the Beam options say
otherwise), so the runner that ran is the one recorded.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from analysis.models import ModelRef
from analysis.thresholds import attach_thresholds, gap_cross_slicing_spec
from evalsuite.errors import InputError
from evalsuite.rules.settings import GateRules
from evalsuite.run.contract import ACCURACY, BASELINE, CANDIDATE, DEFAULT_SEED, LABEL_KEY, OUTPUT_KEY, SIGNATURE
from evalsuite.run.literal_paths import matching_files, without_glob_characters

INFERENCE_BATCH_SIZE = 256
DEFAULT_RUNNER = "DirectRunner"


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


# Measured on a 2-core machine (python -m benchmarks scale): two multi-processing workers took
# 1.59x the time of one at 100,000 examples (each worker imports TensorFlow and loads both
# models) and 0.92x at 1,000,000 (two threads 0.94x). So a worker per this many examples, up to the cores.
EXAMPLES_PER_WORKER = 500_000
MAX_DEFAULT_WORKERS = 4  # each worker holds TensorFlow and both models (about 1 GB)


def with_default_workers(beam_args: tuple[str, ...], examples: int, cores: int | None = None) -> tuple[str, ...]:
    """The DirectRunner on several processes when the data are large enough for that to be faster.

    Only when the options name no other runner and no worker settings: `-- --direct_num_workers=1`
    keeps one process, any other Beam options are taken as given.
    """
    import os

    if cores is None:  # the cores this process may run on (a container's share, not the machine's)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(cores, MAX_DEFAULT_WORKERS, examples // EXAMPLES_PER_WORKER)
    chosen = any(arg.startswith(("--direct_num_workers", "--direct_running_mode")) for arg in beam_args)
    if workers < 2 or chosen or runner_of(beam_args) != DEFAULT_RUNNER:
        return tuple(beam_args)
    return (*beam_args, f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing")


def check_runner(runner: str) -> None:
    """An unknown Beam runner is bad input, found before anything is written.

    The default needs no check, and a warm run that reuses everything never pays Beam's import for one.
    """
    if runner == DEFAULT_RUNNER:
        return
    from apache_beam.runners.runner import create_runner

    try:
        create_runner(runner)
    except (ValueError, ImportError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(f"--runner={runner}: not a Beam runner this installation has ({first[:160]})") from None


def build_eval_config(
    rules: GateRules, eval_data: dict, jackknife: bool, paired: bool = True, fused: bool = True, recipe=()
):
    """Baseline and candidate in one EvalConfig, sliced overall, per true class and per value of each slice feature.

    `paired=False` (for the benchmark only) leaves out the paired counts and every rule's threshold;
    `fused=False` keeps TFMA's and Keras' own metrics on single examples (as the jackknife must).
    `recipe` (analysis.models.RecipeSeed, one per seed) adds every further seed's models and the
    recipe's counts (analysis/recipe_counts.py); the first pair's metrics stay as they are.
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
        for name in dict.fromkeys(
            [BASELINE, CANDIDATE, *(name for seed in recipe for name in (seed.baseline_name, seed.candidate_name))]
        )
    ]
    by_metric = {ACCURACY: cfg.MetricConfig(class_name="SparseCategoricalAccuracy"), **paired_metric_configs()}
    if paired:
        attach_thresholds(by_metric, rules, eval_data)
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
        slicing_specs=[cfg.SlicingSpec(), cfg.SlicingSpec(feature_keys=[LABEL_KEY])]
        + [cfg.SlicingSpec(feature_keys=[name]) for name in eval_data.get("slice_features") or {}],
        metrics_specs=[cfg.MetricsSpec(metrics=per_model, model_names=[BASELINE, CANDIDATE])]
        + ([cfg.MetricsSpec(metrics=paired_specs, model_names=[CANDIDATE])] if paired else []),
    )
    if recipe:
        from analysis.recipe_counts import recipe_metrics_spec

        eval_config.metrics_specs.append(
            recipe_metrics_spec([(seed.baseline_name, seed.candidate_name) for seed in recipe])
        )
    if paired and rules.max_gap is not None:
        eval_config.cross_slicing_specs.append(gap_cross_slicing_spec())
    if jackknife:
        eval_config.options.compute_confidence_intervals.value = True
        eval_config.options.confidence_intervals.method = cfg.ConfidenceIntervalOptions.JACKKNIFE
    elif fused:
        _fuse(eval_config)
    return eval_config


def _fuse(eval_config) -> None:
    """Every metric from one pass over groups of examples (analysis/fused.py), thresholds kept.

    The jackknife resamples single examples, so with it the metrics stay TFMA's and Keras' own.
    """
    from analysis.fused import REPLACES, fused_config
    from analysis.paired import PAIRED_METRICS

    for spec in eval_config.metrics_specs:
        for index, metric in enumerate(spec.metrics):
            if metric.class_name in REPLACES:
                spec.metrics[index].CopyFrom(fused_config(REPLACES[metric.class_name], metric))
            elif metric.class_name == "PairedOutcome":
                name = next(name for name in PAIRED_METRICS if f'"{name}"' in metric.config)
                spec.metrics[index].CopyFrom(fused_config(name, metric))


def is_fused(eval_config) -> bool:
    return any(metric.class_name == "Fused" for spec in eval_config.metrics_specs for metric in spec.metrics)


def run_tfma(
    baseline: ModelRef,
    candidate: ModelRef,
    eval_config,
    pattern: str,
    output: Path,
    beam_args,
    seed: int = DEFAULT_SEED,
    recipe=(),
    outcomes: Path | None = None,
) -> None:
    """One Beam pipeline: read the examples once, evaluate both models (and every further seed's), validate.

    With `outcomes`, the same pass also writes there each example's row: its position, label and
    predictions by the baseline and the candidate (analysis/outcome_tap.py), from which the changed
    examples are listed.
    """
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions

    from analysis.example_batches import ReadExampleBatches
    from analysis.keyword_signature import with_keyword_signatures
    from analysis.threshold_cache import install as cache_thresholds

    cache_thresholds()  # else TFMA's validation costs K^2 threshold records at K classes

    models = {
        BASELINE: baseline,
        CANDIDATE: candidate,
        **{
            name: model
            for s in recipe
            for name, model in ((s.baseline_name, s.baseline), (s.candidate_name, s.candidate))
        },
    }
    with contextlib.ExitStack() as links:
        # TensorFlow matches a model's variables path as a glob: each loads from a path without [ ] * ?.
        readable = {name: links.enter_context(without_glob_characters(model.path)) for name, model in models.items()}
        output.mkdir(parents=True, exist_ok=True)
        output_path = links.enter_context(without_glob_characters(output))  # Beam's file sinks match by glob too
        shared = [
            with_keyword_signatures(
                tfma.default_eval_shared_model(
                    eval_saved_model_path=str(readable[name]), eval_config=eval_config, model_name=name
                )
            )
            for name in models
        ]
        extractors = tfma.default_extractors(eval_shared_model=shared, eval_config=eval_config)
        if is_fused(eval_config):
            from analysis.grouped_slices import grouped_extractors

            extractors = grouped_extractors(extractors, eval_config)
        if outcomes is not None:
            from analysis.outcome_tap import with_outcome_tap

            outcomes.mkdir(parents=True, exist_ok=True)
            try:
                extractors = with_outcome_tap(extractors, links.enter_context(without_glob_characters(outcomes)))
            except ValueError as error:
                raise InputError(f"TFMA's pipeline cannot list the changed examples: {error}") from None
        files = matching_files(pattern)
        if not files:
            raise InputError(f"{pattern}: no TFRecord files match")
        try:
            with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
                _ = (
                    pipeline
                    # The jackknife's buckets are drawn in arrival order: the shards keep theirs.
                    | "ReadExampleBatches"
                    >> ReadExampleBatches(files, ordered=eval_config.options.compute_confidence_intervals.value)
                    | "ExtractEvaluateAndWriteResults"
                    >> tfma.ExtractEvaluateAndWriteResults(
                        eval_config=eval_config,
                        eval_shared_model=shared,
                        output_path=str(output_path),
                        display_only_data_location=pattern,
                        display_only_file_format="tfrecords",
                        extractors=extractors,
                        # The jackknife assigns examples to buckets at random; TFMA's only hook to seed
                        # that is this argument, and without it the intervals change from run to run.
                        random_seed_for_testing=seed,
                    )
                )
        except Exception as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[-1]
            raise InputError(f"TFMA failed on {pattern}: {first[:240]}") from error
