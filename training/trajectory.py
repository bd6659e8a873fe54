"""One seeded training trajectory: the fit, each run's TensorBoard logs, and an export at each epoch count."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from evalsuite.run.atomic import atomic_dir
from evalsuite.run.contract import run_name
from evalsuite.run.fingerprints import fingerprint_content, fingerprint_tree
from evalsuite.run.folder import RunDir, relative
from evalsuite.run.model_identity import weights_fingerprint
from training.model import build_model, check_probabilities, export_saved_model, write_op_graph


def set_determinism(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit_trajectory(
    run, config, spec, x_train, y_train, x_test, y_test, epoch_counts: list[int], log, seed: int
) -> dict[str, dict]:
    """One trajectory of max(epoch_counts) epochs from `seed`, exporting a model at each count."""
    import keras

    from training.callbacks import EpochLines, ExportAtEpoch, LogsSoFar

    names = [run_name(e, None if seed == config.seed else seed) for e in epoch_counts]
    log(f"training: {' + '.join(names)} in one trajectory" if len(names) > 1 else f"training: {names[0]}")
    model = build_model(spec, config.model, config.optimizer, config.steps_per_execution, config.learning_rate)
    check_probabilities(model, x_train, config.model)
    for name in names:
        _clear(run.logs_dir(name))
    # One TensorBoard callback writes the whole trajectory; each shorter run's logs are a copy
    # of its first epochs, taken before that run's export adds its op graph.
    tensorboard = keras.callbacks.TensorBoard(
        log_dir=str(run.logs_dir(names[-1])), histogram_freq=config.histogram_freq, write_graph=True
    )
    callbacks = [tensorboard]
    for epochs, name in zip(epoch_counts, names):
        if name != names[-1]:
            callbacks.append(LogsSoFar(tensorboard, epochs, run.logs_dir(name)))
        callbacks.append(ExportAtEpoch(epochs, lambda m, n=name: _export(run, m, n, spec)))
    # Keras' own bar in a terminal; in a CI log or a pipe one plain line per epoch instead.
    verbose = config.verbose
    if verbose and not sys.stdout.isatty():
        callbacks.append(EpochLines(log))
        verbose = 0
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=config.batch_size,
        epochs=max(epoch_counts),
        validation_data=(x_test, y_test),
        callbacks=callbacks,
        verbose=verbose,
    ).history
    seconds = time.perf_counter() - started
    runs = {}
    for epochs, name in zip(epoch_counts, names):
        runs[name] = {
            "epochs": epochs,
            "saved_model": relative(run, run.model_dir(name)),
            "keras_model": relative(run, run.keras_model_path(name)),
            "logs": relative(run, run.logs_dir(name)),
            "fingerprint": fingerprint_tree(run.model_dir(name)),
            # The Keras file goes into the registry with its SavedModel: it is under custody too.
            "keras_fingerprint": fingerprint_content(run.keras_model_path(name)),
            # The same weights exported again give other bytes: this says "the same model" across runs.
            "weights_fingerprint": weights_fingerprint(run.model_dir(name)),
            "final": {key: round(float(values[epochs - 1]), 6) for key, values in history.items()},
        }
        if seed != config.seed:
            runs[name]["seed"] = seed
        final = runs[name]["final"]
        if "accuracy" in final and "val_accuracy" in final:
            log(
                f"training: {name} train accuracy {final['accuracy']:.4f}, "
                f"validation accuracy {final['val_accuracy']:.4f}"
            )
    log(f"training: fitting {max(epoch_counts)} epochs on {len(y_train)} examples took {seconds:.1f}s")
    return runs


def _export(run: RunDir, model, name: str, spec) -> None:
    """SavedModel and Keras file, each written aside and renamed into place."""
    with atomic_dir(run.model_dir(name)) as staging:
        export_saved_model(model, staging, spec)
    keras_staging = run.models_dir / f".{name}.tmp.keras"  # Keras insists on the suffix
    model.save(str(keras_staging))
    keras_staging.replace(run.keras_model_path(name))
    write_op_graph(model, run.logs_dir(name) / "train", spec)


def _clear(folder: Path) -> None:
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
