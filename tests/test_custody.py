"""A verdict bound to what it judged: swapped models, changed data, edited results, symlinks, full disks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from evalsuite.run.folder import RunDir
from gates.__main__ import main as gate_main
from reports.__main__ import main as reports_main
from tests.helpers import error_lines, run_command


def verdict(run_dir: Path) -> dict:
    return json.loads((run_dir / "gate" / "verdict.json").read_text())


def assert_nothing_says_passed(run_dir: Path) -> None:
    """No file CI or a person reads may still claim a pass."""
    if (run_dir / "gate" / "verdict.json").exists():
        assert verdict(run_dir)["passed"] is False and verdict(run_dir)["state"] != "passed"
    for name in ("gate/summary.md", "report/summary.md", "report/index.html"):
        path = run_dir / name
        assert not path.exists() or "PASSED" not in path.read_text(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "gate" not in manifest["stages"] and "report" not in manifest["stages"]


def refresh_outputs_fingerprint(run_dir: Path) -> None:
    """What a determined editor would also do: make the manifest agree with edited results."""
    run = RunDir(run_dir)
    manifest = json.loads(run.manifest_path.read_text())
    manifest["stages"]["analysis"]["output_fingerprints"] = run.analysis_output_fingerprints()
    run.manifest_path.write_text(json.dumps(manifest))


def test_the_copied_run_is_judged_as_it_was(run_copy, capsys):
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 0
    assert verdict(run_copy)["state"] == "passed"
    judged = verdict(run_copy)["judged"]
    assert judged["candidate"]["label"] == "epochs-2" and len(judged["candidate"]["fingerprint"]) == 16
    assert judged["eval_data"]["examples"] == 300 and judged["rules"]["max_drop"] == 0.03


def test_model_swapped_after_the_analysis_is_never_judged(run_copy, capsys):
    models = run_copy / "models"
    shutil.rmtree(models / "epochs-2")
    shutil.copytree(models / "epochs-1", models / "epochs-2")
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 2
    err = capsys.readouterr().err
    assert "candidate model changed since the analysis" in err and err.count("\n") == 1
    assert_nothing_says_passed(run_copy)
    assert verdict(run_copy)["state"] == "unjudged"
    # Nor is it analysed as if training had made it.
    from analysis.__main__ import main as analysis_main

    assert analysis_main(["--run-dir", str(run_copy), "--baseline", "epochs-1", "--candidate", "epochs-2", "-q"]) == 2
    assert "changed since training exported it" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["replaced", "truncated"])
def test_changed_evaluation_shards_are_never_taken_for_the_judged_data(run_copy, damage, capsys):
    shard = next((run_copy / "data").glob("eval-*.tfrecord"))
    raw = shard.read_bytes()
    shard.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else raw[::-1])
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 2
    assert "evaluation examples changed since the analysis" in capsys.readouterr().err
    assert_nothing_says_passed(run_copy)
    from analysis.__main__ import main as analysis_main

    assert (
        analysis_main(
            ["--run-dir", str(run_copy), "--baseline", "epochs-1", "--candidate", "epochs-2", "--force", "-q"]
        )
        == 2
    )
    assert "changed on disk since the data stage wrote them" in capsys.readouterr().err


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda s: s["models"]["candidate"]["overall"].update(accuracy=0.999), "is not candidate minus baseline"),
        (
            lambda s: (
                s["models"]["candidate"]["overall"].update(accuracy=0.999),
                s["deltas"]["overall"].update(accuracy=0.999 - s["models"]["baseline"]["overall"]["accuracy"]),
            ),
            "does not follow from TFMA's paired counts",
        ),
        (lambda s: s["models"]["candidate"]["overall"].update(accuracy=1e308), "accuracy on overall is 1e+308"),
        (lambda s: s["models"]["baseline"]["overall"].update(accuracy=-5), "accuracy on overall is -5"),
        (lambda s: s["deltas"]["label=3"].update(accuracy=0.5), "is not candidate minus baseline"),
        (lambda s: s.pop("eval_data"), "no 'eval_data'"),
        (lambda s: s["eval_data"].update(examples="300"), "bad example count"),
        (lambda s: s["models"]["candidate"]["label=2"].update(accuracy=float("nan")), "accuracy on label=2 is nan"),
        (lambda s: s["paired"]["overall"].update(newly_wrong=-1), "paired count newly_wrong on overall is -1"),
        (lambda s: s["models"]["candidate"]["label=5"].update(examples=10**9), "example count on label=5"),
    ],
)
def test_edited_numbers_are_exit_2_even_with_a_matching_manifest(run_copy, capsys, edit, expected):
    path = run_copy / "analysis" / "summary.json"
    summary = json.loads(path.read_text())
    edit(summary)
    path.write_text(json.dumps(summary))
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 2
    assert f"{path}: was changed since the analysis wrote its results" in capsys.readouterr().err
    refresh_outputs_fingerprint(run_copy)
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert_nothing_says_passed(run_copy)


@pytest.mark.parametrize("name", ["validation.json", "changed.json", "tfma/metrics"])
def test_each_analysis_file_is_named_when_it_changed(run_copy, capsys, name):
    """TFMA's own results are under custody too: one byte flipped is noticed, and the file named."""
    folder = run_copy / "analysis"
    path = next(folder.glob(f"{name}*"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert lines == [f"error: {path}: was changed since the analysis wrote its results; rerun the analysis"]
    assert_nothing_says_passed(run_copy)


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("validation.json", '{"metric_validations_per_slice": "no"}', "corrupt TFMA validation result"),
        ("validation.json", "[]", "corrupt TFMA validation result"),
        ("changed.json", '{"examples": [], "counts": {}}', "changed examples on overall (None) disagree"),
        ("changed.json", '{"examples": [{"index": "x"}], "counts": {}}', "corrupt list of changed examples"),
        ("summary.json", "{not json", "corrupt analysis summary"),
    ],
)
def test_corrupt_but_parseable_analysis_files_are_exit_2(run_copy, capsys, name, content, expected):
    (run_copy / "analysis" / name).write_text(content)
    refresh_outputs_fingerprint(run_copy)
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "damage, commands, expected",
    [
        (lambda m: m["stages"].update(analysis="done"), ("gates", "analysis"), "corrupt manifest"),
        (
            lambda m: m["stages"]["analysis"].pop("output_fingerprints"),
            ("gates", "reports"),
            "corrupt manifest (stage 'analysis': output_fingerprints is missing); use a new --run-dir",
        ),
        (
            lambda m: m["stages"]["analysis"].update(candidate=["a", "list"]),
            ("gates",),
            "corrupt manifest (stage 'analysis': candidate is not a record)",
        ),
        (lambda m: m["stages"]["data"].update(pattern=5), ("analysis",), "(stage 'data': pattern is not a str)"),
        (lambda m: m["stages"]["data"].pop("eval_examples"), ("analysis",), "(stage 'data': eval_examples is missing)"),
        (
            lambda m: m["stages"]["training"]["runs"]["epochs-2"].update(epochs="2"),
            ("analysis", "gates"),
            "(stage 'training': runs.epochs-2.epochs is not a int)",
        ),
        (lambda m: m["stages"].update(deploy={"status": "done"}), ("gates",), "(stage 'deploy': not a stage)"),
        (lambda m: m["stages"]["gate"].update(passed="yes"), ("reports",), "(stage 'gate': passed is not a bool)"),
    ],
)
def test_wrong_types_in_the_manifest_are_exit_2_one_line(run_copy, capsys, damage, commands, expected):
    manifest = json.loads((run_copy / "manifest.json").read_text())
    damage(manifest)
    (run_copy / "manifest.json").write_text(json.dumps(manifest))
    for command in commands:
        extra = ["--baseline", "epochs-1", "--candidate", "epochs-2", "--force"] if command == "analysis" else []
        result = run_command(command, "--run-dir", str(run_copy), *extra)
        lines = error_lines(result.stderr)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        assert len(lines) == 1 and expected in lines[0], (command, lines)


def test_a_verdict_from_another_run_is_never_shown_beside_these_numbers(run_copy, capsys):
    from evalsuite.run.contract import load_summary
    from reports.judged import verdict_for

    other = json.loads((run_copy / "gate" / "verdict.json").read_text())
    other["judged"]["candidate"]["fingerprint"] = "0" * 16
    (run_copy / "gate" / "verdict.json").write_text(json.dumps(other))
    run = RunDir(run_copy)
    shown, why = verdict_for(run, load_summary(run.analysis_dir))
    assert shown is None and "is not the verdict the gate wrote" in why
    # Even with the manifest made to agree with the edited file, it names other results than these.
    from evalsuite.run.fingerprints import fingerprint_files

    manifest = json.loads(run.manifest_path.read_text())
    manifest["stages"]["gate"]["verdict_fingerprint"] = fingerprint_files([run.verdict_path])
    run.manifest_path.write_text(json.dumps(manifest))
    shown, why = verdict_for(run, load_summary(run.analysis_dir))
    assert shown is None and "was not made from these results" in why
    assert reports_main(["comment", "--run-dir", str(run_copy)]) == 0
    comment = capsys.readouterr().out
    assert "UNJUDGED" in comment and "PASSED" not in comment


@pytest.mark.parametrize("under", ["logs", "models"])
def test_cleanup_never_follows_a_symlink_out_of_the_run_folder(run_copy, tmp_path, under, capsys):
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in (".keep.tmp", ".x.old-1", "data.txt"):
        (victim / name).write_text("mine")
    (run_copy / under / "link").symlink_to(victim, target_is_directory=True)
    if under == "logs":
        (run_copy / "logs" / "epochs-1" / ".escape.tmp").symlink_to(victim / ".keep.tmp")
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 0
    assert sorted(p.name for p in victim.iterdir()) == [".keep.tmp", ".x.old-1", "data.txt"]
    assert all((victim / name).read_text() == "mine" for name in (".keep.tmp", ".x.old-1", "data.txt"))


def test_a_model_name_that_links_out_of_the_run_folder_is_refused(run_copy, tmp_path, capsys):
    outside = tmp_path / "outside"
    shutil.copytree(run_copy / "models" / "epochs-2", outside)
    (run_copy / "models" / "elsewhere").symlink_to(outside, target_is_directory=True)
    from analysis.__main__ import main as analysis_main

    assert analysis_main(["--run-dir", str(run_copy), "--candidate", "elsewhere", "--baseline", "epochs-1", "-q"]) == 2
    assert "resolves outside the run folder" in capsys.readouterr().err


@pytest.fixture
def small_filesystem(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.decode().strip()[:80]})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_exit_2_not_a_verdict(run_copy, small_filesystem, capsys):
    run_dir = small_filesystem / "run"
    shutil.copytree(run_copy, run_dir, symlinks=True)
    filler = small_filesystem / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError:
            pass
    code = gate_main(["--run-dir", str(run_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(error_lines(err)) == 1 and "No space left on device" in err
    assert not (run_dir / "gate" / "verdict.json").exists() or verdict(run_dir)["passed"] is False


def test_a_bad_beam_runner_is_bad_input_that_changes_nothing(run_copy, capsys):
    from analysis.__main__ import main as analysis_main
    from tests.test_trust import snapshot

    before = snapshot(run_copy)
    args = ["--run-dir", str(run_copy), "--baseline", "epochs-1", "--candidate", "epochs-2", "--force", "-q"]
    assert analysis_main([*args, "--", "--runner=NoSuchRunner"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --runner=NoSuchRunner: not a Beam runner") and err.count("\n") == 1
    assert snapshot(run_copy) == before
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 0
