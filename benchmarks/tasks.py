"""One measured task per process, so each peak memory is its own.

Each task imports its heavy libraries before its clock starts, so a stage and
its floor are timed on the same footing; the gate runs are timed as whole
processes (what a user waits for) by the caller.

Usage (by benchmarks/__main__.py): python -m benchmarks.tasks TASK JSON-ARGS
Prints one JSON line: {"seconds": ..., "peak_rss_mb": ..., ...}.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from evalsuite.run.contract import DEFAULT_BASELINE, DEFAULT_CANDIDATE, DEFAULT_SEED


def bare_fit(data: str, logdir: str, seed: int = DEFAULT_SEED) -> dict:
    """The tutorial's own training: one 6-epoch model.fit, a step per call, TensorBoard with histograms."""
    import keras
    import tensorflow as tf

    from evalsuite.data.datasets import load_dataset
    from training.model import build_model, scale_images

    shutil.rmtree(logdir, ignore_errors=True)
    started = time.perf_counter()
    dataset = load_dataset(data, seed, log=lambda message: None)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    spec = dataset.spec
    model = build_model(spec)
    model.fit(
        scale_images(dataset.x_train, spec),
        dataset.y_train,
        batch_size=32,
        epochs=6,
        validation_data=(scale_images(dataset.x_test, spec), dataset.y_test),
        callbacks=[keras.callbacks.TensorBoard(log_dir=logdir, histogram_freq=1)],
        verbose=0,
    )
    return {"seconds": time.perf_counter() - started, "eval_examples": int(len(dataset.y_test))}


def train_stage(
    data: str, run_dir: str, independent: bool = False, seed: int = DEFAULT_SEED, model: str = "mlp", seeds: int = 1
) -> dict:
    import keras  # noqa: F401  (imported before the clock starts, as in bare_fit)
    import tensorflow  # noqa: F401

    from evalsuite.run.folder import RunDir
    from training.train import TrainConfig, train

    shutil.rmtree(run_dir, ignore_errors=True)  # a repeat must train, not reuse the last repeat's models
    started = time.perf_counter()
    with RunDir(Path(run_dir)) as run:
        config = TrainConfig(data=data, seed=seed, seeds=seeds, independent_runs=independent, model=model, verbose=0)
        result = train(run, config, log=_quiet)
    return {"seconds": time.perf_counter() - started, "eval_examples": result.data["eval_examples"]}


def analysis_stage(run_dir: str, intervals: bool, beam_args: list[str] | None = None, discovery: bool = True) -> dict:
    """The analysis stage as the pipeline runs it (intervals=True: paired counts, intervals and the
    changed-examples list), or the same stage without any of those (intervals=False); discovery=False
    turns off the discovered slices alone."""
    if not discovery:
        os.environ["EVALSUITE_DISCOVERY"] = "off"
    import tensorflow  # noqa: F401  (imported before the clock starts, as in raw_floor)
    import tensorflow_model_analysis  # noqa: F401

    from analysis.evaluate import AnalysisConfig, analyze
    from analysis.models import check_saved_model
    from analysis.summary import summarize
    from analysis.tfma_run import build_eval_config, run_tfma
    from evalsuite.data.spec import recorded_spec
    from evalsuite.rules.settings import load_rules
    from evalsuite.run.folder import RunDir

    rules = load_rules(None)
    with RunDir(Path(run_dir)) as run:
        run.invalidate_from("analysis")  # measure the work, not the reuse
        started = time.perf_counter()
        if intervals:
            result = analyze(run, AnalysisConfig(beam_args=tuple(beam_args or ())), rules, log=_quiet)
            examples = result.summary["eval_data"]["examples"]
        else:
            record = run.stage("data")
            spec = recorded_spec(record, str(run.manifest_path))
            eval_data = {
                "source": record["source"],
                "fingerprint": record["fingerprint"],
                "examples": record["eval_examples"],
                "examples_per_class": record["eval_examples_per_class"],
                "data_spec": spec.as_dict(),
            }
            models = _run_models(run)
            for model in models:
                check_saved_model(model.path, model.role, spec)
            config = build_eval_config(rules, eval_data, jackknife=False, paired=False)
            output = Path(run_dir) / "bare-tfma"
            run_tfma(*models, config, str(run.path / record["pattern"]), output, ("--runner=DirectRunner",))
            summarize(output, *models, eval_data, AnalysisConfig(), "DirectRunner")
            examples = eval_data["examples"]
    return {"seconds": time.perf_counter() - started, "eval_examples": examples}


def analysis_per_seed(run_dir: str) -> dict:
    """The alternative to one pipeline for a recipe: one analysis per seed's pair (and none of the
    cross-seed counts, which would need one more pass): what one pipeline of every model is measured against."""
    import tensorflow  # noqa: F401  (imported before the clock starts, as in analysis_stage)
    import tensorflow_model_analysis  # noqa: F401

    from analysis.evaluate import AnalysisConfig, analyze
    from evalsuite.rules.settings import load_rules
    from evalsuite.run.contract import DEFAULT_BASELINE, DEFAULT_CANDIDATE, run_name
    from evalsuite.run.folder import RunDir

    rules = load_rules(None)
    with RunDir(Path(run_dir)) as run:
        seeds = run.stage("training")["seeds"]
        started = time.perf_counter()
        for seed in seeds:
            run.invalidate_from("analysis")
            first = seed == seeds[0]
            pair = (DEFAULT_BASELINE, DEFAULT_CANDIDATE) if first else (run_name(3, seed), run_name(6, seed))
            config = AnalysisConfig(baseline=pair[0], candidate=pair[1])
            if first:  # the first seed's models would bring every seed along: name them by path instead
                config = AnalysisConfig(baseline=str(run.model_dir(pair[0])), candidate=str(run.model_dir(pair[1])))
            result = analyze(run, config, rules, log=_quiet)
        run.invalidate_from("analysis")
    return {"seconds": time.perf_counter() - started, "eval_examples": result.summary["eval_data"]["examples"]}


def tfma_floor(run_dir: str, eval_data: str | None = None) -> dict:
    """The least any TFMA analysis of both models costs, as TFMA documents it: `tfma.run_model_analysis`
    (its own reader), the same models and examples, only TFMA's ExampleCount (no accuracy, no plots, no
    paired counts, no rules). The examples are the run's own, or the TFRecord files in the folder `eval_data`."""
    import tensorflow  # noqa: F401  (imported before the clock starts, as in raw_floor)
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    from analysis.keyword_signature import with_keyword_signatures
    from analysis.tfma_run import build_eval_config
    from evalsuite.rules.settings import load_rules
    from evalsuite.run.contract import BASELINE, CANDIDATE
    from evalsuite.run.folder import RunDir
    from evalsuite.run.literal_paths import as_glob

    with RunDir(Path(run_dir)) as run:
        record = run.stage("data")
        counts = {"examples": record["eval_examples"], "examples_per_class": record["eval_examples_per_class"]}
        models = _run_models(run)
        config = build_eval_config(load_rules(None), counts, jackknife=False, paired=False)
        del config.metrics_specs[:]
        config.metrics_specs.append(
            cfg.MetricsSpec(metrics=[cfg.MetricConfig(class_name="ExampleCount")], model_names=[BASELINE, CANDIDATE])
        )
        pattern = str(Path(eval_data) / "*.tfrecord") if eval_data else str(run.path / record["pattern"])
        started = time.perf_counter()
        shared = [
            with_keyword_signatures(
                tfma.default_eval_shared_model(eval_saved_model_path=str(m.path), eval_config=config, model_name=role)
            )
            for m, role in zip(models, (BASELINE, CANDIDATE))
        ]
        tfma.run_model_analysis(
            eval_shared_model=shared,
            eval_config=config,
            data_location=as_glob(pattern),  # TFMA reads the whole string as a glob
            output_path=str(Path(run_dir) / "floor-tfma"),
            pipeline_options=PipelineOptions(["--runner=DirectRunner", "--direct_num_workers=1"]),
        )
    return {"seconds": time.perf_counter() - started, "eval_examples": record["eval_examples"]}


def raw_floor(run_dir: str, eval_data: str | None = None) -> dict:
    """Both SavedModels' signatures over the same examples, batched, plus numpy per-digit accuracy.

    The examples are the run's own, or the TFRecord files in the folder `eval_data`.
    """
    import numpy as np
    import tensorflow as tf

    started = time.perf_counter()
    found = Path(eval_data).glob("*.tfrecord") if eval_data else (Path(run_dir) / "data").glob("eval-*.tfrecord")
    files = sorted(str(p) for p in found)
    records = list(tf.data.TFRecordDataset(files).batch(1024).as_numpy_iterator())
    labels = np.concatenate(
        [
            tf.io.parse_example(batch, {"label": tf.io.FixedLenFeature([], tf.int64)})["label"].numpy()
            for batch in records
        ]
    )
    accuracy = {}
    for name in (DEFAULT_BASELINE, DEFAULT_CANDIDATE):
        serve = tf.saved_model.load(str(Path(run_dir) / "models" / name)).signatures["serving_default"]
        predicted = np.concatenate(
            [serve(examples=tf.constant(batch))["probabilities"].numpy().argmax(1) for batch in records]
        )
        accuracy[name] = [float(np.mean(predicted[labels == d] == d)) for d in range(int(labels.max()) + 1)]
    return {"seconds": time.perf_counter() - started, "eval_examples": int(len(labels)), "accuracy": accuracy}


def pipeline(run_dir: str, data: str) -> dict:
    from pipeline.run import main

    started = time.perf_counter()
    code = main(["--run-dir", run_dir, "--data", data, "-q"])
    return {"seconds": time.perf_counter() - started, "exit": code}


def _run_models(run) -> list:
    """The run's 3- and 6-epoch models, as baseline and candidate."""
    from analysis.models import resolve_model

    return [
        resolve_model(run, name, role)
        for name, role in ((DEFAULT_BASELINE, "baseline"), (DEFAULT_CANDIDATE, "candidate"))
    ]


def _quiet(message: str) -> None:
    pass


TASKS = {
    "bare_fit": bare_fit,
    "train_stage": train_stage,
    "analysis_stage": analysis_stage,
    "analysis_per_seed": analysis_per_seed,
    "raw_floor": raw_floor,
    "tfma_floor": tfma_floor,
    "pipeline": pipeline,
}


if __name__ == "__main__":
    import contextlib
    import io

    from evalsuite.errors import freeze_heap_at_exit

    freeze_heap_at_exit()  # exit as the project's commands do, so floors stay floors

    task, arguments = sys.argv[1], json.loads(sys.argv[2])
    with contextlib.redirect_stdout(io.StringIO()):  # only the result line goes to stdout
        result = TASKS[task](**arguments)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))
