"""Property-based: no input makes the readers or the rules loader fail other than with the clear error."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalsuite.data.datasets import load_npz
from evalsuite.data.files import read_idx
from evalsuite.errors import InputError
from evalsuite.rules.definitions import RULES
from evalsuite.rules.settings import parse_rules

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _idx_like() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, plus near-misses of real IDX headers (the interesting ones)."""
    header = st.builds(
        lambda zero, code, ndim, dims: bytes([0, zero, code, ndim]) + b"".join(struct.pack(">I", d) for d in dims),
        st.sampled_from([0, 1]),
        st.sampled_from([0x08, 0x09, 0x0D]),
        st.integers(0, 4),
        st.lists(st.integers(0, 40), max_size=4),
    )
    return st.one_of(st.binary(max_size=2000), st.builds(lambda h, body: h + body, header, st.binary(max_size=3000)))


@PROPERTY_SETTINGS
@given(data=_idx_like(), gzipped=st.booleans())
def test_idx_reader_returns_an_array_or_a_clear_error(tmp_path_factory, data, gzipped):
    path = tmp_path_factory.mktemp("idx") / "t10k-images-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    try:
        array = read_idx(path)
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert array.dtype == np.uint8 and array.ndim in (1, 3)


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


_array = st.one_of(
    st.builds(
        lambda n, fill: np.full((n, 28, 28), fill), st.integers(0, 3), st.sampled_from([0, 255, 0.5, -1, np.nan, 1e9])
    ),
    st.builds(lambda n: np.arange(n), st.integers(0, 4)),
    st.builds(lambda n: np.zeros((n, 5)), st.integers(0, 3)),
    st.just(np.array(["a", "b"])),
    st.just(np.array(3.0)),
)


@PROPERTY_SETTINGS
@given(
    arrays=st.dictionaries(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "other"]), _array, max_size=5),
    garble=st.integers(0, 200),
)
def test_npz_reader_returns_a_dataset_or_a_clear_error(tmp_path_factory, arrays, garble):
    data = _npz_bytes(arrays)
    if garble:
        data = data[: max(0, len(data) - garble)]
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    path.write_bytes(data)
    try:
        dataset = load_npz(path)
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert dataset.x_train.dtype == np.uint8 and dataset.x_train.shape[1:] == (28, 28)
        assert dataset.y_test.min() >= 0 and dataset.y_test.max() <= 9 and len(dataset.y_test) > 0


def test_npz_reader_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "x_train.npy",
            b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
            + b" " * 40
            + b"\n"
            + b"cos\nsystem\n",
        )
    with pytest.raises(InputError, match="refusing to unpickle|not a readable|missing key"):
        load_npz(path)


_toml_value = st.one_of(
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
_section = st.dictionaries(
    st.sampled_from(["min_improvement", "min_accuracy", "max_drop", "max_gap", "require", "typo"]),
    _toml_value,
    max_size=3,
)


@PROPERTY_SETTINGS
@given(
    table=st.dictionaries(
        st.sampled_from(["overall", "per_class", "gap_to_overall", "significance", "extra"]),
        st.one_of(_section, _toml_value),
        max_size=4,
    )
)
def test_rules_are_valid_rules_or_a_clear_error(table):
    try:
        rules = parse_rules(table, "gate.toml")
    except InputError as error:
        assert str(error).startswith("gate.toml: ") and "\n" not in str(error)
    else:
        assert rules.any_rule
        assert rules.judges_one_seed == (any(rule.enabled(rules) for rule in RULES) or rules.discovery_fail)
        for value in (rules.min_improvement, rules.min_accuracy, rules.max_drop, rules.max_gap):
            assert value is None or 0.0 <= value <= 1.0


@PROPERTY_SETTINGS
@given(text=st.text(max_size=200))
def test_rules_file_text_is_valid_rules_or_a_clear_error(tmp_path_factory, text):
    from evalsuite.rules.settings import load_rules

    path = tmp_path_factory.mktemp("rules") / "gate.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_rules(path)
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error).strip()
