"""The blessed-model registry: bless on pass only, newest first, concurrent and tamper-evident."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite import blessing, registry
from evalsuite.errors import InputError
from gates.__main__ import main as gate_main
from reports.__main__ import main as reports_main


def _bless_copy(run_copy: Path, folder: Path, *extra: str) -> int:
    return gate_main(["--run-dir", str(run_copy), "--bless", str(folder), "-q", *extra])


def test_a_passing_gate_blesses_the_candidate_with_its_record(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    assert _bless_copy(run_copy, folder) == 0
    found = registry.entries(folder)
    assert len(found) == 1
    entry = found[0]
    assert (entry.model / "saved_model.pb").is_file() and (entry.path / "model.keras").is_file()
    record = entry.record
    assert record["candidate"] == "epochs-2" and record["verdict"]["state"] == "passed"
    assert record["eval_data"]["examples"] == 300 and len(record["eval_data"]["fingerprint"]) == 16
    assert record["rules"]["max_drop"] == 0.03 and record["run_folder"] == str(run_copy.resolve())
    assert set(record["accuracy"]) == {"overall"} | {f"digit {d}" for d in range(10)}
    assert entry.name.endswith(record["model_fingerprint"]) and entry.name.startswith(record["blessed_at"])
    assert "git_commit" in record


def test_a_failing_or_broken_gate_blesses_nothing(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    models = run_copy / "models"
    shutil.rmtree(models / "epochs-2")
    shutil.copytree(models / "epochs-1", models / "epochs-2")
    assert _bless_copy(run_copy, folder) == 2  # a model swapped since the analysis
    assert not folder.exists()  # nothing blessed, not even an empty registry made


def test_a_gate_that_says_no_blesses_nothing(planted, tmp_path, capsys):
    run_dir, _, rules = planted
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"))
    folder = tmp_path / "registry"
    assert gate_main(["--run-dir", str(copy), "--rules", str(rules), "--bless", str(folder), "-q"]) == 1
    assert not folder.exists()


def test_blessed_reference_resolves_the_newest_entry(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    assert _bless_copy(run_copy, folder) == 0
    newer = blessing.bless(folder, run_copy / "models" / "epochs-1", None, {"candidate": "epochs-1"})
    found = registry.entries(folder)
    assert len(found) == 2 and found[0].name == newer.name
    said = []
    resolved, warning, info = registry.resolve_baseline(
        f"blessed:{folder}", "rubber-stamp", "epochs-1", said.append, said.append
    )
    assert resolved == str(found[0].model) and warning is None and info is None and found[0].name in said[0]


def test_an_empty_registry_is_stated_and_follows_the_rules(tmp_path):
    said, warned = [], []
    empty = tmp_path / "empty"
    empty.mkdir()
    resolved, note, info = registry.resolve_baseline(
        f"blessed:{empty}", "rubber-stamp", "epochs-3", said.append, warned.append
    )
    assert resolved == "epochs-3" and warned == [note] and info is None
    assert "no blessed model in" in note and "first run" in note and "rubber-stamp" in note
    with pytest.raises(InputError, match="no blessed model yet, and registry.on_empty = 'refuse'"):
        registry.resolve_baseline(f"blessed:{empty}", "refuse", "epochs-3", said.append, warned.append)


def test_two_blessings_at_once_both_land_intact(run_copy, tmp_path):
    folder = tmp_path / "registry"
    model = run_copy / "models" / "epochs-2"
    script = (
        "import sys; from pathlib import Path; from evalsuite import blessing;"
        "blessing.bless(Path(sys.argv[1]), Path(sys.argv[2]), None, {'candidate': sys.argv[3]})"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(folder), str(model), name]) for name in ("a", "b", "c")
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0]
    found = registry.entries(folder)
    assert sorted(entry.record["candidate"] for entry in found) == ["a", "b", "c"]
    assert not [path for path in folder.iterdir() if path.name.startswith(".")]


@pytest.mark.parametrize("damage", ["edited", "truncated", "model changed", "symlink"])
def test_a_tampered_entry_is_skipped_with_a_warning(run_copy, tmp_path, damage):
    folder = tmp_path / "registry"
    entry = blessing.bless(folder, run_copy / "models" / "epochs-2", None, {"candidate": "good"})
    other = blessing.bless(folder, run_copy / "models" / "epochs-1", None, {"candidate": "newer"})
    record = other.path / "record.json"
    if damage == "edited":
        payload = json.loads(record.read_text())
        payload["accuracy"] = {"overall": 0.999}
        record.write_text(json.dumps(payload))
    elif damage == "truncated":
        record.write_text(record.read_text()[:40])
    elif damage == "model changed":
        (other.model / "saved_model.pb").write_bytes(b"not the blessed model")
    else:
        outside = tmp_path / "outside"
        shutil.move(str(other.path), outside)
        (folder / other.name).symlink_to(outside, target_is_directory=True)
    warned = []
    assert [e.name for e in registry.entries(folder, warn=warned.append)] == [entry.name]
    assert len(warned) == 1 and other.name in warned[0]
    assert registry.latest(folder).record["candidate"] == "good"
    # With no trustworthy entry at all, the registry is refused, never taken for an empty one.
    shutil.rmtree(entry.path)
    with pytest.raises(InputError, match="none of its 1 entries can be trusted"):
        registry.latest(folder)


def test_history_prints_newest_first_with_overall_and_worst_class(run_copy, tmp_path, capsys):
    folder = tmp_path / "registry"
    blessing.bless(folder, run_copy / "models" / "epochs-1", None, {"candidate": "epochs-1"})
    assert _bless_copy(run_copy, folder) == 0
    capsys.readouterr()
    assert gate_main(["history", "--registry", str(folder)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [entry.name for entry in registry.entries(folder)]
    assert len(lines) == 3 and lines[1].endswith(names[0]) and lines[2].endswith(names[1])
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    overall = summary["models"]["candidate"]["overall"]["accuracy"]
    assert f"{overall:.4f}" in lines[1] and "digit " in lines[1]


def test_the_pr_comment_has_its_marker_verdict_first_and_escapes_names(run_copy, capsys):
    summary_path = run_copy / "analysis" / "summary.json"
    assert reports_main(["comment", "--run-dir", str(run_copy), "--artifact-url", "https://ci.example/run/1"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == "<!-- evalsuite-gate-comment -->" and "Model gate PASSED" in lines[1]
    assert "| digit 7 |" in text and "(https://ci.example/run/1)" in text
    # A hostile model name neither breaks the table nor injects HTML.
    summary = json.loads(summary_path.read_text())
    summary["candidate"]["label"] = "evil|<script>alert(1)</script>"
    summary_path.write_text(json.dumps(summary))
    assert reports_main(["comment", "--run-dir", str(run_copy)]) == 0
    hostile = capsys.readouterr().out
    assert "<script>" not in hostile and "evil&#124;&lt;script&gt;" in hostile
    header = next(line for line in hostile.splitlines() if line.startswith("| slice |"))
    assert header.count("|") == 10


@pytest.mark.slow
def test_the_pipeline_gates_against_the_last_blessed_model(tmp_path, tiny_npz):
    """First run: empty registry, said so, judged on its own and blessed. Second run of the same
    model: it is the blessed model, so it is "same as blessed", judged on its own again and
    not blessed twice. A missing registry folder is exit 2, never taken for a first run."""
    from tests.helpers import run_pipeline

    folder = tmp_path / "registry"
    args = ["--data", str(tiny_npz), "--epochs", "1", "2", "--seed", "7", "-q"]
    args += ["--baseline", f"blessed:{folder}", "--bless", str(folder)]
    missing = run_pipeline("--run-dir", str(tmp_path / "missing"), *args)
    assert missing.returncode == 2 and "no such registry folder" in missing.stderr
    folder.mkdir()
    first = run_pipeline("--run-dir", str(tmp_path / "first"), *args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "no blessed model in" in first.stderr and "rubber-stamp" in first.stderr
    first_verdict = json.loads((tmp_path / "first" / "gate" / "verdict.json").read_text())
    assert any("first run" in warning for warning in first_verdict["warnings"])
    [entry] = registry.entries(folder)

    second = run_pipeline("--run-dir", str(tmp_path / "second"), *args)
    assert second.returncode == 0, second.stderr[-2000:]
    verdict = json.loads((tmp_path / "second" / "gate" / "verdict.json").read_text())
    assert verdict["baseline"]["label"] == "epochs-1" and verdict["state"] == "passed"
    assert verdict["checks"] == first_verdict["checks"]
    assert any("same as blessed" in note for note in verdict["notes"])
    assert not any("same as blessed" in warning or "first run" in warning for warning in verdict["warnings"])
    assert [e.name for e in registry.entries(folder)] == [entry.name]
