"""What a team relies on in CI: blessings, the PR comment, custody of every file, bad input that changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evalsuite import blessing, registry
from evalsuite.errors import InputError
from gates.__main__ import main as gate_main
from reports.__main__ import main as reports_main
from tests.helpers import error_lines, run_command


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and link under `folder`, by content: what 'unchanged' means."""
    state = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            state[relative] = "link:" + os.readlink(path)
        elif path.is_file():
            state[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[relative] = "folder"
    return state


def verdict(run_dir: Path) -> dict:
    return json.loads((run_dir / "gate" / "verdict.json").read_text())


# 1. A model judged against its own blessing -----------------------------------------------------------


@pytest.mark.slow
def test_a_candidate_that_is_the_newest_blessed_model_is_same_as_blessed(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    assert gate_main(["--run-dir", str(run_copy), "--bless", str(folder), "-q"]) == 0
    [entry] = registry.entries(folder)
    capsys.readouterr()
    # The same model again, judged against the registry: nothing to beat there, so its own pair is judged.
    code = gate_main(["--run-dir", str(run_copy), "--baseline", f"blessed:{folder}", "--bless", str(folder), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    judged = verdict(run_copy)
    assert judged["baseline"]["label"] == "epochs-1" and judged["state"] == "passed"
    assert any("same as blessed" in note for note in judged["notes"])
    assert not any("same as blessed" in warning for warning in judged["warnings"])
    # ... and blessing it again adds no duplicate entry.
    assert [e.name for e in registry.entries(folder)] == [entry.name]


def test_a_different_candidate_is_judged_against_the_blessed_model(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    folder.mkdir()
    blessing.bless(folder, run_copy / "models" / "epochs-1", None, {"candidate": "older"})
    said = []
    resolved, warning, info = registry.resolve_baseline(
        f"blessed:{folder}", "rubber-stamp", "epochs-1", said.append, said.append, "f" * 16
    )
    assert resolved == str(registry.latest(folder).model) and warning is None and info is None


# 2. The Keras file is under custody ---------------------------------------------------------------------


def test_a_keras_file_replaced_after_the_analysis_is_never_blessed(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    keras_file = run_copy / "models" / "epochs-2.keras"
    shutil.copy(run_copy / "models" / "epochs-1.keras", keras_file)
    assert gate_main(["--run-dir", str(run_copy), "--bless", str(folder), "-q"]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(keras_file) in lines[0] and "nothing blessed" in lines[0]
    assert not folder.exists() or registry.entries(folder) == []
    assert verdict(run_copy)["state"] == "unjudged"


def test_a_blessed_keras_file_edited_in_the_registry_is_not_trusted(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    assert gate_main(["--run-dir", str(run_copy), "--bless", str(folder), "-q"]) == 0
    [entry] = registry.entries(folder)
    with open(entry.path / registry.KERAS_NAME, "ab") as handle:
        handle.write(b"\0")
    warned = []
    with pytest.raises(InputError, match="none of its 1 entries can be trusted"):
        registry.entries(folder, warn=warned.append)
    assert "Keras file does not match" in warned[0]


# 3. An edited verdict.json is not believed ----------------------------------------------------------------


def test_an_edited_verdict_is_never_shown_as_passed(planted, tmp_path, capsys):
    run_dir, code, _ = planted
    assert code == 1
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"))
    edited = verdict(copy)
    edited.update(state="passed", passed=True)
    for check in edited["checks"]:
        check.update(passed=True, status="pass")
    (copy / "gate" / "verdict.json").write_text(json.dumps(edited))
    assert reports_main(["comment", "--run-dir", str(copy)]) == 0
    comment = capsys.readouterr().out
    assert "PASSED" not in comment and "UNJUDGED" in comment
    assert reports_main(["--run-dir", str(copy), "-q"]) == 0
    page = (copy / "report" / "index.html").read_text()
    assert "PASSED" not in page and "not the verdict the gate wrote" in page


# 4. Class names are made safe where they enter ---------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, expected",
    [
        ("a\x07", "control or invisible character (U+0007)"),
        ("a\rb", "control or invisible character (U+000D)"),
        ("a\u202eb", "control or invisible character (U+202E)"),
        ("a\u2028b", "control or invisible character (U+2028)"),
        ("Overall", "is reserved"),
    ],
)
def test_class_names_must_be_printable_and_not_reserved(bad, expected):
    from evalsuite.data.class_names import parse_names

    names = [f"class {c}" for c in "abcdefghi"] + [bad]
    import re

    with pytest.raises(InputError, match=re.escape(expected)):
        parse_names(",".join(names), "--class-names")


def test_duplicate_class_names_are_refused():
    from evalsuite.data.class_names import parse_names

    with pytest.raises(InputError, match="class names 1 and 10 are the same"):
        parse_names(",".join(["Shirt", *"bcdefghi", "shirt"]), "--class-names")


def test_a_class_names_file_that_is_not_utf8_is_named(tmp_path):
    from evalsuite.data.class_names import names_beside

    (tmp_path / "class_names.txt").write_bytes("\n".join(f"caf\xe9 {c}" for c in range(10)).encode("latin-1"))
    with pytest.raises(InputError, match=r"class_names.txt: not UTF-8 text"):
        names_beside(tmp_path / "data.npz")


# 5. Symlinked run folders and the report server -------------------------------------------------------------


@pytest.mark.parametrize("folder", ["gate", "report"])
def test_a_symlinked_gate_or_report_folder_is_refused_and_its_target_untouched(run_copy, tmp_path, folder, capsys):
    victim = tmp_path / "victim"
    shutil.move(str(run_copy / folder), victim)
    (run_copy / folder).symlink_to(victim, target_is_directory=True)
    before = snapshot(victim)
    for main, args in ((gate_main, []), (reports_main, [])):
        assert main(["--run-dir", str(run_copy), "-q", *args]) == 2
        lines = error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and f"{run_copy / folder}: a symlink" in lines[0]
    assert snapshot(victim) == before


def test_the_report_server_serves_only_plain_visible_files(tmp_path):
    from reports.view import _servable

    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("report")
    (report / ".index.html.held.tmp").write_text("held")
    (report / "root").symlink_to("/", target_is_directory=True)
    (report / "passwd").symlink_to("/etc/passwd")
    (report / "sub").mkdir()
    assert _servable(report, report / "index.html") and _servable(report, report)
    for refused in (".index.html.held.tmp", "root/etc/passwd", "passwd", "sub", "../report/index.html"):
        assert not _servable(report, report / refused), refused
    assert not _servable(report, tmp_path / "elsewhere")


@pytest.mark.slow
def test_the_report_server_refuses_links_and_held_files_over_http(run_copy):
    import urllib.error
    import urllib.request

    (run_copy / "report" / "root").symlink_to("/", target_is_directory=True)
    (run_copy / "report" / ".index.html.held.tmp").write_text("held")
    process = subprocess.Popen(
        [sys.executable, "-m", "reports", "view", "--run-dir", str(run_copy)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        urls = {}
        deadline = time.monotonic() + 120
        while "report" not in urls and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            key, _, value = line.strip().partition(": ")
            urls[key] = value
        base = urls["report"].rsplit("/", 1)[0]
        assert urllib.request.urlopen(f"{base}/index.html", timeout=30).status == 200
        for path in ("root/etc/passwd", ".index.html.held.tmp", "root/"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{base}/{path}", timeout=30)
            assert refused.value.code == 404, path
    finally:
        process.terminate()
        process.wait(timeout=60)


# 6. Bad input leaves the folder as it was ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--candidate", ""], "--candidate: empty model name"),
        (["--seed=-1", "--force"], "--seed: must be in 0..4294967295"),
        (["--force", "--", "--runner=NoSuchRunner"], "NoSuchRunner"),
        (["--candidate", "epochs-9"], "no candidate model named 'epochs-9'"),
    ],
)
def test_bad_input_to_the_gate_leaves_a_passing_folder_as_it_was(run_copy, args, expected):
    before = snapshot(run_copy)
    result = run_command("gates", "--run-dir", str(run_copy), "-q", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and expected in lines[0], lines
    assert snapshot(run_copy) == before


def test_evaluation_data_missing_a_class_leaves_the_folder_as_it_was(run_copy, bundled, tmp_path):
    import numpy as np

    from evalsuite.data.datasets import Dataset
    from evalsuite.data.files import save_npz

    subset = bundled.subset(None, 300, 7)
    keep = subset.y_test != 4
    data = tmp_path / "no-fours.npz"
    save_npz(data, Dataset(subset.x_test[:10], subset.y_test[:10], subset.x_test[keep], subset.y_test[keep], "x"))
    assert not np.any(subset.y_test[keep] == 4)
    before = snapshot(run_copy)
    result = run_command("gates", "--run-dir", str(run_copy), "-q", "--eval-data", str(data))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "no evaluation examples of class 4" in lines[0], lines
    assert snapshot(run_copy) == before


def test_bad_data_on_a_new_run_folder_leaves_nothing_behind(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    target = tmp_path / "new" / "deeper" / "run"
    result = run_command("pipeline", "--run-dir", str(target), "--data", str(bad), "-q")
    assert result.returncode == 2
    assert len(error_lines(result.stderr)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


# 7. The registry's smaller holes ----------------------------------------------------------------------------------


def test_a_fifo_in_the_registry_does_not_hang_history(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    good = blessing.bless(folder, run_copy / "models" / "epochs-2", None, {"candidate": "good"})
    odd = folder / "20990101T000000.000000Z-fifo"
    shutil.copytree(good.path, odd)
    (odd / "record.json").unlink()
    os.mkfifo(odd / "record.json")
    piped = folder / "20990101T000000.000000Z-pipe"
    shutil.copytree(good.path, piped)
    os.mkfifo(piped / "model" / "a-pipe")
    os.mkfifo(folder / "a-fifo")
    finished = {}
    worker = threading.Thread(target=lambda: finished.update(code=gate_main(["history", "--registry", str(folder)])))
    worker.start()
    worker.join(timeout=60)
    assert finished.get("code") == 0, "history hung on a FIFO"
    out = capsys.readouterr()
    assert good.name in out.out and out.err.count("skipped") == 3


def test_newest_is_the_blessing_time_its_record_states_not_the_folder_name(run_copy, tmp_path):
    folder = tmp_path / "registry"
    first = blessing.bless(folder, run_copy / "models" / "epochs-2", None, {"candidate": "first"})
    second = blessing.bless(folder, run_copy / "models" / "epochs-1", None, {"candidate": "second"})
    os.rename(first.path, folder / ("z-" + first.name))  # a name that sorts last
    assert registry.latest(folder).name == second.name


def test_a_missing_registry_is_exit_2_not_a_first_run(tmp_path):
    """The command line says so too (test_registry's pipeline test); here the rule itself."""
    missing = tmp_path / "no-such-registry"
    with pytest.raises(
        InputError, match=r"no-such-registry: no such registry folder \(for a first run, create it empty\)"
    ):
        registry.resolve_baseline(f"blessed:{missing}", "rubber-stamp", "epochs-1", print, print)
    assert not missing.exists()


def test_an_abandoned_staging_folder_is_removed_and_a_live_one_kept(run_copy, tmp_path):
    import fcntl

    folder = tmp_path / "registry"
    folder.mkdir()
    abandoned = folder / ".incoming-killed"
    abandoned.mkdir()
    (abandoned / registry.STAGING_LOCK).write_text("")
    live = folder / ".incoming-live"
    live.mkdir()
    with open(live / registry.STAGING_LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        blessing.bless(folder, run_copy / "models" / "epochs-2", None, {"candidate": "x"})
        assert not abandoned.exists() and live.exists()


def test_an_entry_is_taken_back_when_the_gate_cannot_say_passed(run_copy, tmp_path, capsys, monkeypatch):
    import gates.gate

    folder = tmp_path / "registry"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(run_copy / "gate" / "junit.xml"))

    monkeypatch.setattr(gates.gate, "write_outputs", full_disk)
    assert gate_main(["--run-dir", str(run_copy), "--bless", str(folder), "-q"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert registry.entries(folder) == [] and [p.name for p in folder.iterdir()] == []


def test_a_write_that_fails_without_a_file_name_is_named(tmp_path):
    """A file-size limit (EFBIG) or a full disk reports no file: the error line must name it."""
    target = tmp_path / "big.json"
    script = (
        "import resource, sys; from pathlib import Path; from evalsuite.run.atomic import write_bytes_atomic;"
        "from evalsuite.errors import run_cli;"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024));"
        "sys.exit(run_cli(lambda: write_bytes_atomic(Path(sys.argv[1]), b'x' * 4096) or 0))"
    )
    result = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [f"error: {target}: File too large"]
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_junit_stays_well_formed_whatever_a_reason_holds(run_copy):
    import xml.etree.ElementTree as ET

    from evalsuite.run.folder import RunDir
    from gates.outputs import write_unjudged

    run = RunDir(run_copy)
    write_unjudged(run, "model /tmp/a\x1b[31mb\x00c\x0b is gone")
    root = ET.parse(run_copy / "gate" / "junit.xml").getroot()
    assert "\ufffd[31mb\ufffdc\ufffd" in root.find(".//error").get("message")


def test_the_weights_fingerprint_names_the_weights_not_the_bytes(run_copy, tmp_path):
    from evalsuite.run.fingerprints import fingerprint_tree
    from evalsuite.run.model_identity import weights_fingerprint

    runs = json.loads((run_copy / "manifest.json").read_text())["stages"]["training"]["runs"]
    models = run_copy / "models"
    assert weights_fingerprint(models / "epochs-2") == runs["epochs-2"]["weights_fingerprint"]
    assert weights_fingerprint(models / "epochs-1") != weights_fingerprint(models / "epochs-2")
    # A copy whose variable index is written again holds the same weights in other bytes.
    copy = tmp_path / "copy"
    shutil.copytree(models / "epochs-2", copy)
    (copy / "assets").mkdir(exist_ok=True)
    (copy / "assets" / "note.txt").write_text("other bytes")
    assert fingerprint_tree(copy) != fingerprint_tree(models / "epochs-2")
    assert weights_fingerprint(copy) == weights_fingerprint(models / "epochs-2")
