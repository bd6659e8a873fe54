"""The models training builds, and their export as a SavedModel TFMA can read.

`--model mlp` (the default) is the classic Keras MNIST MLP; `--model cnn` a
small convolutional network for 28 to 64 pixel images; `--model FILE.py:NAME`
or `--model package.module:NAME` a function `NAME(input_shape, num_classes)`
returning a Keras model, where input_shape is (height, width, channels).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from pathlib import Path

from evalsuite.data.spec import DataSpec
from evalsuite.errors import InputError
from evalsuite.run.serving import check_fits, export_saved_model, scale_images  # noqa: F401  (training exports through the contract)

# Several steps per call into TensorFlow: the same updates in the same order (bitwise
# the same weights under op determinism), far less per-step Python overhead.
STEPS_PER_EXECUTION = 25
BUILT_IN = ("mlp", "cnn")
MAX_FACTORY_BYTES = 16 << 20  # a model factory's source file
DEFAULT_OPTIMIZER = "adam"


def mlp(input_shape, num_classes: int):
    """Flatten, Dense 512 relu, Dropout 0.2, Dense K softmax (the tutorial's MLP)."""
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape), name="image"),
            keras.layers.Flatten(),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="mnist_mlp",
    )


def cnn(input_shape, num_classes: int):
    """Keras' "simple MNIST convnet": Conv 32 and Conv 64 (3x3 relu, each max-pooled), Flatten, Dropout 0.5, Dense K softmax."""
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape), name="image"),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="small_cnn",
    )


def factory_source(model: str) -> Path | None:
    """The file a `--model FILE.py:NAME` or `package.module:NAME` factory lives in (None for built-ins)."""
    if model in BUILT_IN:
        return None
    location, sep, name = model.rpartition(":")
    if not sep or not location or not name.isidentifier():
        raise InputError(f"--model: expected mlp, cnn, FILE.py:FUNCTION or package.module:FUNCTION, got {model!r}")
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise InputError(f"--model: {path}: no such file")
        return path.resolve()
    try:
        found = _find_without_importing(location)
    except (ImportError, ValueError) as error:
        raise InputError(f"--model: cannot find module {location!r} ({error})") from None
    if found is None or not found.origin or not Path(found.origin).is_file():
        raise InputError(f"--model: cannot find module {location!r} (is it importable from here?)")
    return Path(found.origin).resolve()


def _find_without_importing(location: str):
    """The spec of `a.b.c` found on the import path without running a/__init__.py (user code runs only in
    factory_check's child process, before training writes anything)."""
    import importlib.machinery
    import sys

    if location in sys.modules:
        return getattr(sys.modules[location], "__spec__", None)
    search, found = None, None
    parts = location.split(".")
    for depth in range(1, len(parts) + 1):
        found = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), search)
        if found is None:
            return None
        search = found.submodule_search_locations
        if depth < len(parts) and search is None:
            return None
    return found


def factory_root(model: str) -> Path | None:
    """The folder a factory's own imports resolve from: a FILE.py's folder, or the top of its package."""
    source = factory_source(model)
    if source is None:
        return None
    location = model.rpartition(":")[0]
    if location.endswith(".py"):
        return source.parent
    depth = location.count(".") + (2 if source.name == "__init__.py" else 1)
    return source.parents[depth - 1]


def factory_files(model: str) -> list[Path]:
    """The factory's source file, then the modules beside it that it imports, directly or through others.

    Found by reading the imports (as the stages' own code is), so editing a helper the
    factory imports retrains, while the libraries' files never count.
    """
    source = factory_source(model)
    if source is None:
        return []
    from evalsuite.run.stage_code import project_imports

    location = model.rpartition(":")[0]
    entry = source.stem if location.endswith(".py") else location
    try:
        found = project_imports(entry, factory_root(model)).modules.values()
    except (ValueError, SyntaxError, OSError):
        found = ()  # importing it will say what is wrong, in one line
    return [source, *sorted({path.resolve() for path in found} - {source})]


def model_fingerprint(model: str) -> str | None:
    """The factory's code, part of the training fingerprint (None for built-ins, whose code is ours).

    A factory alone is its source bytes, as it always was; with helpers beside it, their
    names and bytes too.
    """
    files = factory_files(model)
    if not files:
        return None
    if len(files) == 1:
        from evalsuite.safe_files import read_bounded

        return hashlib.sha256(read_bounded(files[0], MAX_FACTORY_BYTES, "model factory")).hexdigest()[:16]
    from evalsuite.run.fingerprints import fingerprint_named_files

    root = factory_root(model)
    return fingerprint_named_files([(path.relative_to(root).as_posix(), path) for path in files])


def _factory(model: str):
    if model == "mlp":
        return mlp
    if model == "cnn":
        return cnn
    source = factory_source(model)
    location, _, name = model.rpartition(":")
    try:
        if location.endswith(".py"):
            module = _import_file(source)
        else:
            module = importlib.import_module(location)
    except (Exception, SystemExit) as error:
        raise InputError(f"--model: {source} does not import ({_why(error)})") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise InputError(f"--model: {source} has no function {name!r}")
    return function


def _import_file(source: Path):
    """Import a factory file with its own folder on the import path, as `python FILE.py` would have it.

    The folder stays there: a factory may import its helpers inside the function, when it is called.
    """
    import sys

    folder = str(source.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    loaded = importlib.util.spec_from_file_location(f"evalsuite_model_{source.stem}", source)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def _why(error: BaseException) -> str:
    """One line on what user code did: an exit is named as one, never taken for the command's own."""
    if isinstance(error, SystemExit):
        return f"it called exit({error.code!r})"
    return f"{type(error).__name__}: {str(error)[:160]}"


def build_model(
    spec: DataSpec,
    model: str = "mlp",
    optimizer: str = DEFAULT_OPTIMIZER,
    steps_per_execution: int = 1,
    learning_rate: float | None = None,
):
    """The model `--model` names for `spec`, compiled: adam (or `optimizer`, at `learning_rate`), sparse CE, accuracy.

    A factory's model that comes compiled keeps its own compile settings.
    """
    import keras

    factory = _factory(model)
    try:
        built = factory(spec.input_shape, spec.num_classes)
    except InputError:
        raise
    except (Exception, SystemExit) as error:
        raise InputError(f"--model {model}: building the model failed ({_why(error)})") from None
    if not isinstance(built, keras.Model):
        raise InputError(f"--model {model}: returned {type(built).__name__}, not a Keras model")
    check_fits(built, spec, f"--model {model}")
    if not built.compiled:
        # Keras 3: the third positional argument of compile is loss_weights, not metrics.
        built.compile(
            optimizer=resolve_optimizer(optimizer, learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=steps_per_execution,
        )
    return built


def resolve_optimizer(name: str, learning_rate: float | None):
    """The optimizer by its Keras name; the plain name when nothing is changed (as the tutorial compiles)."""
    import keras

    if name == DEFAULT_OPTIMIZER and learning_rate is None:
        return name
    try:
        if learning_rate is None:
            return keras.optimizers.get(name)
        return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})
    except (ValueError, TypeError) as error:
        raise InputError(f"--optimizer: {name!r} is not a Keras optimizer ({str(error)[:120]})") from None


def check_probabilities(model, images, name: str) -> None:
    """The model's outputs on a few training images must be probabilities (in 0..1, summing to 1)."""
    import keras
    import numpy as np

    outputs = keras.ops.convert_to_numpy(model(images[:16], training=False))
    if not (
        np.all(outputs >= -1e-6) and np.all(outputs <= 1 + 1e-6) and np.allclose(outputs.sum(axis=1), 1, atol=1e-3)
    ):
        raise InputError(
            f"--model {name}: the model's outputs are not probabilities (each row in 0..1, summing to 1); "
            "end it with a softmax (activation='softmax' on the last layer)"
        )


def write_op_graph(model, logs_dir: Path, spec: DataSpec) -> None:
    """Write the model's op graph for TensorBoard's Graphs dashboard.

    Keras 3's TensorBoard callback writes only the conceptual graph.
    """
    import tensorflow as tf

    forward = tf.function(lambda images: model(images, training=False))
    concrete = forward.get_concrete_function(tf.TensorSpec([None, *spec.input_shape], tf.float32, name="images"))
    writer = tf.summary.create_file_writer(str(logs_dir))
    with writer.as_default():
        tf.summary.graph(concrete.graph)
    writer.close()
