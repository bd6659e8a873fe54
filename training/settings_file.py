"""The training config file (train.toml): optimizer, learning rate, batch size, features to slice by.

One file holds what a team sets once for its recipe; a flag given on the
command line overrides the file's value, and the file overrides the built-in
default. What was used, and where each value came from, is recorded in the
manifest and shown in the report's "What ran". Unknown keys and wrong types
are a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from evalsuite.data.slice_features import check_name
from evalsuite.errors import InputError
from training.model import DEFAULT_OPTIMIZER

DEFAULT_CONFIG_FILE = Path("train.toml")
DEFAULT_BATCH_SIZE = 32  # Keras' own default, as the tutorial trains
MAX_LEARNING_RATE = 10.0
MAX_CONFIG_BYTES = 64 << 10


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    kind: type
    default: Any
    flag: str  # the command-line flag that overrides it


KEYS = (
    Key("training", "optimizer", str, DEFAULT_OPTIMIZER, "--optimizer"),
    Key("training", "learning_rate", float, None, "--learning-rate"),
    Key("training", "batch_size", int, DEFAULT_BATCH_SIZE, "--batch-size"),
    Key("slicing", "features", list, [], "--slice-by"),
)


def load(path: Path | None) -> tuple[dict[str, Any], str]:
    """The file's values by key name (only those it sets), and where they came from.

    `path` None reads ./train.toml when there is one; a named file must exist.
    """
    if path is None:
        if not DEFAULT_CONFIG_FILE.is_file():
            return {}, "built-in defaults"
        path = DEFAULT_CONFIG_FILE
    if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
        raise InputError(f"{path}: --config needs a TOML file of at most 64 KB")
    from evalsuite.safe_files import read_text

    try:
        table = tomllib.loads(read_text(path, MAX_CONFIG_BYTES, "--config file"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid TOML ({error})") from None
    known = {(key.section, key.name): key for key in KEYS}
    values: dict[str, Any] = {}
    for section, entries in table.items():
        if not isinstance(entries, dict) or section not in {key.section for key in KEYS}:
            raise InputError(f"{path}: unknown section [{section}] (known: training, slicing)")
        for name, value in entries.items():
            key = known.get((section, name))
            if key is None:
                names = ", ".join(k.name for k in KEYS if k.section == section)
                raise InputError(f"{path}: unknown key {section}.{name} (known: {names})")
            values[name] = _checked(key, value, path)
    return values, str(path)


def _checked(key: Key, value: Any, path: Path | None) -> Any:
    """`value` for `key`, checked: from the file at `path`, or (None) from the key's flag."""
    where = f"{path}: {key.section}.{key.name}" if path is not None else key.flag
    if key.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, key.kind) or isinstance(value, bool):
        raise InputError(f"{where} must be {'a list of names' if key.kind is list else key.kind.__name__}")
    if key.kind is list:
        if not all(isinstance(item, str) for item in value) or len(set(value)) != len(value):
            raise InputError(f"{where} must be a list of distinct feature names")
        return [check_name(item, where) for item in value]
    if key.kind in (int, float) and not 0 < value < float("inf"):
        raise InputError(f"{where} must be a positive number, got {value}")
    if key.name == "learning_rate" and value > MAX_LEARNING_RATE:
        raise InputError(f"{where} must be at most {MAX_LEARNING_RATE}, got {value}")
    return value


def resolve(flags: dict[str, Any], file_values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each key's value (flag, else file, else default) and where it came from."""
    values, origins = {}, {}
    for key in KEYS:
        if flags.get(key.name) is not None:
            values[key.name], origins[key.name] = _checked(key, flags[key.name], None), key.flag
        elif key.name in file_values:
            values[key.name], origins[key.name] = file_values[key.name], "file"
        else:
            values[key.name], origins[key.name] = key.default, "default"
    return values, origins
