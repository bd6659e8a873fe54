"""Files the product reads or publishes: the newest blessing verified, blessings published whole,
every file read bounded, .keras archives bounded, and a blessed baseline's training split known."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from evalsuite import blessing, registry
from evalsuite.errors import InputError
from evalsuite.run.folder import RunDir
from gates.__main__ import main as gate_main
from tests.helpers import SEED, error_lines, run_command


def _flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


# 1. The newest blessing is the newest: damage never hands the baseline to an older one -------------------------


def _two_blessings(run_copy: Path, folder: Path) -> tuple[registry.Entry, registry.Entry]:
    """The weak model blessed first, a copy of the strong one last. The strong candidate ties the newest
    blessing, and a tie fails (overall.min_improvement = 0.0); against the older blessing it would pass."""
    older = blessing.bless(folder, run_copy / "models" / "epochs-1", None, {"candidate": "epochs-1"})
    time.sleep(0.01)  # distinct blessing times
    newer = blessing.bless(folder, run_copy / "models" / "epochs-2", None, {"candidate": "epochs-2"})
    return older, newer


def _damage(entry: registry.Entry, how: str) -> None:
    record = entry.path / registry.RECORD_NAME
    if how == "flipped byte in the record":
        text = record.read_text()
        _flip_byte(record, text.index('"model_fingerprint"') + 25)
    elif how == "truncated record":
        record.write_bytes(record.read_bytes()[:100])
    elif how == "flipped byte in the model":
        _flip_byte(entry.model / "saved_model.pb", 200)
    elif how == "record claims an older time":
        payload = json.loads(record.read_text())
        payload["blessed_at"] = "2001" + payload["blessed_at"][4:]
        record.write_text(json.dumps(payload))
    elif how == "record removed":
        record.unlink()


DAMAGE = [
    "flipped byte in the record",
    "truncated record",
    "flipped byte in the model",
    "record claims an older time",
    "record removed",
]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_newest_blessing_is_exit_2_naming_it_never_an_older_one(run_copy, tmp_path, capsys, how):
    """Against the intact registry the candidate fails; with the newest entry damaged, falling back to the
    older blessing would let it pass."""
    from analysis.__main__ import main as analysis_main

    folder = tmp_path / "registry"
    _, newer = _two_blessings(run_copy, folder)
    _damage(newer, how)
    code = analysis_main(
        ["--run-dir", str(run_copy), "--baseline", f"blessed:{folder}", "--candidate", "epochs-2", "-q"]
    )
    lines = error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, lines
    assert str(newer.path) in lines[0] and "may be the newest blessing" in lines[0]
    with pytest.raises(InputError, match=newer.name):
        registry.newest(folder)


def test_the_intact_registry_fails_the_candidate_against_the_newest_blessing(run_copy, tmp_path, capsys):
    from analysis.__main__ import main as analysis_main

    folder = tmp_path / "registry"
    _, newer = _two_blessings(run_copy, folder)
    args = ["--run-dir", str(run_copy), "--baseline", f"blessed:{folder}", "--candidate", "epochs-2", "-q"]
    assert analysis_main(args) == 0
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 1
    verdict = json.loads((run_copy / "gate" / "verdict.json").read_text())
    assert verdict["baseline"]["path"] == str(newer.model)


def test_a_damaged_older_blessing_is_skipped_with_a_warning(run_copy, tmp_path):
    folder = tmp_path / "registry"
    older, newer = _two_blessings(run_copy, folder)
    _damage(older, "flipped byte in the record")
    warned = []
    resolved, _, _ = registry.resolve_baseline(f"blessed:{folder}", "refuse", "epochs-1", print, warned.append)
    assert resolved == str(newer.model)
    assert len(warned) == 1 and older.name in warned[0] and "skipped" in warned[0]


def test_an_unnamed_item_in_the_registry_may_be_newest_and_is_refused(run_copy, tmp_path):
    folder = tmp_path / "registry"
    _two_blessings(run_copy, folder)
    (folder / "copied-by-hand").mkdir()
    with pytest.raises(InputError, match="copied-by-hand: registry entry cannot be verified"):
        registry.resolve_baseline(f"blessed:{folder}", "refuse", "epochs-1", print, print)


# 2. A blessing is published whole, last, and only for a run whose files say it passed ------------------------------


class Interrupt:
    """Raise KeyboardInterrupt at the n-th call of any file-writing step (before or after it acts), once."""

    def __init__(self, at: int | None, after: bool):
        self.at, self.after, self.calls, self.fired = at, after, 0, False

    def wrap(self, real):
        def step(*args, **kwargs):
            self.calls += 1
            hit = not self.fired and self.calls == self.at
            if hit and not self.after:
                self.fired = True
                raise KeyboardInterrupt
            result = real(*args, **kwargs)
            if hit:
                self.fired = True
                raise KeyboardInterrupt
            return result

        return step


WRITE_STEPS = [(os, "rename"), (os, "replace"), (os, "fsync"), (os, "unlink"), (shutil, "copytree"), (shutil, "copy2")]


def _gate_interrupted(run_dir: Path, folder: Path, interrupt: Interrupt) -> int:
    reals = [(module, name, getattr(module, name)) for module, name in WRITE_STEPS]
    for module, name, real in reals:
        setattr(module, name, interrupt.wrap(real))
    try:
        return gate_main(["--run-dir", str(run_dir), "--bless", str(folder), "-q"])
    finally:
        for module, name, real in reals:
            setattr(module, name, real)


def test_an_interrupted_blessing_leaves_no_entry_or_a_whole_one_for_a_passing_run(run_copy, tmp_path, capsys):
    counted = Interrupt(None, after=False)
    folder = tmp_path / "counted-registry"
    folder.mkdir()
    template = tmp_path / "template"
    shutil.copytree(run_copy, template, symlinks=True)
    assert _gate_interrupted(run_copy, folder, counted) == 0
    steps = counted.calls
    assert steps > 5
    outcomes = set()
    for at in range(1, steps + 1):
        for after in (False, True):
            run_dir, folder = tmp_path / f"run-{at}-{after}", tmp_path / f"registry-{at}-{after}"
            shutil.copytree(template, run_dir, symlinks=True)
            folder.mkdir()
            interrupt = Interrupt(at, after)
            code = _gate_interrupted(run_dir, folder, interrupt)
            where = f"interrupted {'after' if after else 'at'} write step {at} of {steps}"
            assert code == (130 if interrupt.fired else 0), where
            published = registry.entries(folder)
            verdict_file = run_dir / "gate" / "verdict.json"
            state = json.loads(verdict_file.read_text())["state"] if verdict_file.exists() else None
            gate_record = RunDir(run_dir).stage("gate") or {}
            recorded_pass = gate_record.get("status") == "done" and gate_record.get("passed") is True
            outcomes.add(bool(published))
            if published:
                [entry] = published
                assert entry.record["verdict"]["state"] == "passed", where
                assert state == "passed" and recorded_pass, f"{where}: an entry for a run that is {state}"
            else:
                assert state != "passed" and not recorded_pass, f"{where}: the run says passed, nothing blessed"
            assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [], f"{where}: leftovers"
            shutil.rmtree(run_dir)
            shutil.rmtree(folder)
    assert outcomes == {True, False}  # interrupted before publication, and after it
    capsys.readouterr()


# 3. What the registry's checksum protects against is said plainly -----------------------------------------------


def test_the_registry_says_its_checksum_guards_against_accidents_not_attackers():
    text = " ".join(registry.__doc__.split())
    assert "unkeyed sha256" in text and "accidents" in text and "write access" in text


# 4. One bounded reader: pipes, devices and huge files are one line, at once -------------------------------------


def _one_line_exit_2(result, *expected: str) -> None:
    lines = error_lines(result.stderr)
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    for text in expected:
        assert text in lines[0], lines[0]


def _odd_manifest(run_dir: Path, kind: str) -> tuple[Path, str]:
    manifest = run_dir / "manifest.json"
    manifest.unlink()
    if kind == "fifo":
        os.mkfifo(manifest)
        return manifest, "named pipe (FIFO)"
    if kind == "dev-zero":
        manifest.symlink_to("/dev/zero")
        return manifest, "a device"
    with open(manifest, "w") as handle:  # valid JSON, and a valid empty manifest but for its size
        handle.write('{"version": 2, "stages": {}, "padding": "')
        handle.write("x" * (80 << 20))
        handle.write('"}')
    return manifest, "over the 67108864-byte bound"


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "80 MB"])
def test_a_manifest_that_is_a_pipe_a_device_or_huge_is_one_line_at_once(run_copy, kind):
    manifest, expected = _odd_manifest(run_copy, kind)
    # The manifest's one reader, on its own: every command and every stage reads through it.
    script = (
        "import sys; from pathlib import Path; from evalsuite.errors import run_cli;"
        "from evalsuite.run.folder import RunDir;"
        "sys.exit(run_cli(lambda: RunDir(Path(sys.argv[1])).read_manifest() and 0))"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script, str(run_copy)], capture_output=True, text=True, timeout=60)
    _one_line_exit_2(result, str(manifest), expected)
    # ... and the gate as CI runs it.
    result = run_command("gates", "--run-dir", str(run_copy), "-q", timeout=120)
    _one_line_exit_2(result, "manifest.json")
    assert time.monotonic() - started < 60


def test_data_that_is_a_pipe_is_one_line_at_once(tmp_path):
    fifo = tmp_path / "digits.npz"
    os.mkfifo(fifo)
    result = run_command("training", "--run-dir", str(tmp_path / "run"), "--data", str(fifo), "-q", timeout=120)
    _one_line_exit_2(result, str(fifo), "named pipe (FIFO)")


def test_evaluation_data_or_class_names_that_are_pipes_are_one_line_at_once(run_copy, tiny_npz, tmp_path):
    fifo = tmp_path / "eval.npz"
    os.mkfifo(fifo)
    result = run_command("analysis", "--run-dir", str(run_copy), "--eval-data", str(fifo), "-q", timeout=120)
    _one_line_exit_2(result, str(fifo), "named pipe (FIFO)")
    data = tmp_path / "named"
    data.mkdir()
    shutil.copy(tiny_npz, data / "eval.npz")
    os.mkfifo(data / "class_names.txt")
    result = run_command("analysis", "--run-dir", str(run_copy), "--eval-data", str(data / "eval.npz"), timeout=120)
    _one_line_exit_2(result, str(data / "class_names.txt"), "named pipe (FIFO)")


def test_rules_that_are_a_pipe_are_one_line_at_once(run_copy, tmp_path):
    fifo = tmp_path / "gate.toml"
    os.mkfifo(fifo)
    result = run_command("gates", "--run-dir", str(run_copy), "--rules", str(fifo), "-q", timeout=30)
    _one_line_exit_2(result, str(fifo), "named pipe (FIFO)")


def test_the_bounded_reader_refuses_what_is_not_a_small_regular_file(tmp_path):
    from evalsuite.safe_files import read_bounded, read_text

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"pipe: thing is a named pipe \(FIFO\), not a regular file"):
        read_bounded(fifo, 100, "thing")
    with pytest.raises(InputError, match="is a device"):
        read_bounded("/dev/zero", 100, "thing")
    with pytest.raises(InputError, match="is a folder"):
        read_bounded(tmp_path, 100, "thing")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    with pytest.raises(InputError, match="is 101 bytes, over the 100-byte bound"):
        read_bounded(big, 100, "thing")
    (tmp_path / "ok").write_text("héllo")
    assert read_text(tmp_path / "ok", 100) == "héllo"
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "missing", 100)


# 5. A .keras file is a zip: bounded before Keras inflates it ----------------------------------------------------


def _zip_bomb(path: Path, megabytes: int = 200) -> Path:
    """A .keras-shaped zip whose weights member is `megabytes` of zeros (a few hundred KB on disk)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.15.1"}')
        archive.writestr("config.json", "{}")
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(megabytes):
                member.write(block)
    return path


def test_a_keras_zip_bomb_is_refused_before_keras_opens_it(run_copy, tmp_path):
    bomb = _zip_bomb(tmp_path / "bomb.keras")
    assert bomb.stat().st_size < 2 << 20
    result = run_command(
        "analysis", "--run-dir", str(run_copy), "--baseline", "epochs-1", "--candidate", str(bomb), "-q", timeout=300
    )
    _one_line_exit_2(result, str(bomb), "model.weights.h5", "zip bomb")


def test_zip_bounds_pass_a_real_keras_file_and_bound_the_total(run_copy, tmp_path, monkeypatch):
    from evalsuite.data import zip_bounds

    zip_bounds.check_zip_bounds(run_copy / "models" / "epochs-2.keras", "candidate .keras file")
    monkeypatch.setattr(zip_bounds, "MAX_TOTAL_BYTES", 1 << 20)
    with pytest.raises(InputError, match="over the 1048576-byte bound"):
        zip_bounds.check_zip_bounds(run_copy / "models" / "epochs-2.keras", "candidate .keras file")
    not_zip = tmp_path / "x.keras"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable zip archive"):
        zip_bounds.check_zip_bounds(not_zip, "candidate .keras file")


# 6. A blessed baseline trained on another split of the same data is said so in the verdict ---------------------


def test_the_split_identity_follows_the_seed_only_where_the_seed_draws_the_split(tiny_npz):
    from evalsuite.data.datasets import load_bundled, load_npz
    from evalsuite.data.split_identity import overlap_warning, split_identity

    seven, eight = split_identity(load_bundled(7), 7), split_identity(load_bundled(8), 8)
    assert seven["pool"] == eight["pool"] and seven["held_out"] != eight["held_out"]
    warning = overlap_warning(seven, eight, "E in R")
    assert "another split of the same data" in warning and "--seed 7" in warning
    assert overlap_warning(seven, split_identity(load_bundled(7), 7), "E in R") is None
    # A file that fixes its own split holds out the same examples whatever the seed.
    fixed = load_npz(tiny_npz)
    assert overlap_warning(split_identity(fixed, 7), split_identity(fixed, 8), "E in R") is None
    assert overlap_warning(None, eight, "E in R") is None


@pytest.mark.slow
def test_a_blessing_from_another_split_of_the_same_data_is_a_warning_in_the_verdict(tmp_path, capsys):
    from pipeline.run import main as pipeline_main

    folder = tmp_path / "registry"
    folder.mkdir()
    common = ["--data", "bundled", "--train-limit", "600", "--eval-limit", "300", "--epochs", "1", "2", "-q"]
    first = tmp_path / "seed-7"
    assert pipeline_main(["--run-dir", str(first), *common, "--seed", str(SEED), "--bless", str(folder)]) == 0
    [entry] = registry.entries(folder)
    assert entry.record["training_split"] == RunDir(first).stage("data")["split"]
    second = tmp_path / "seed-8"
    code = pipeline_main(["--run-dir", str(second), *common, "--seed", "8", "--baseline", f"blessed:{folder}"])
    assert code in (0, 1), capsys.readouterr().err[-2000:]
    verdict = json.loads((second / "gate" / "verdict.json").read_text())
    assert verdict["baseline"]["path"] == str(entry.model)
    [warning] = [w for w in verdict["warnings"] if "another split of the same data" in w]
    assert entry.name in warning and f"split seed {SEED}; this run's: 8" in warning

