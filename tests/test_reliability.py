"""Bad input never crashes or corrupts; interrupted runs never look finished; runs never collide."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from evalsuite.errors import InputError
from evalsuite.run.folder import RunDir
from gates.__main__ import main as gate_main
from pipeline.run import main as pipeline_main
from tests.helpers import SEED, analyse_and_gate, run_pipeline, start_command


def tree_state(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a hash of its bytes: 'nothing changed' made checkable."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def tiny_args(run_dir: Path, data: Path, *extra: str) -> list[str]:
    return ["--run-dir", str(run_dir), "--data", str(data), "--epochs", "1", "2", "--seed", str(SEED), "-q", *extra]


# Models ---------------------------------------------------------------------------------------------------------


def _export_module(path: Path, input_spec, output_fn, name="serving_default"):
    import tensorflow as tf

    class Odd(tf.Module):
        @tf.function(input_signature=[input_spec])
        def serve(self, examples):
            return output_fn(examples)

    module = Odd()
    tf.saved_model.save(module, str(path), signatures={name: module.serve})
    return path


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("float input", "must take one batch of serialized tf.Example"),
        ("wrong output shape", "has shape (None, 5), expected (None, 10)"),
        ("no probabilities", "has no 'probabilities' output"),
        ("other signature name", "has no 'serving_default' signature"),
    ],
)
def test_saved_models_without_the_expected_contract_are_exit_2(tmp_path, tiny_models, eval_npz, capsys, kind, expected):
    import tensorflow as tf

    strings = tf.TensorSpec([None], tf.string, name="examples")
    path = tmp_path / "odd"
    if kind == "float input":
        _export_module(
            path,
            tf.TensorSpec([None, 28, 28], tf.float32, name="examples"),
            lambda x: {"probabilities": tf.zeros([tf.shape(x)[0], 10])},
        )
    elif kind == "wrong output shape":
        _export_module(path, strings, lambda x: {"probabilities": tf.zeros([tf.shape(x)[0], 5])})
    elif kind == "no probabilities":
        _export_module(path, strings, lambda x: {"scores": tf.zeros([tf.shape(x)[0], 10])})
    else:
        _export_module(path, strings, lambda x: {"probabilities": tf.zeros([tf.shape(x)[0], 10])}, name="predict")
    code = analyse_and_gate(tmp_path / "run", tiny_models["weak"], path, eval_npz)
    err = capsys.readouterr().err
    assert code == 2 and expected in err and str(path) in err and err.count("\n") == 1


# Run folders ----------------------------------------------------------------------------------------------------


def test_run_folder_in_use_is_refused_and_left_alone(run_copy, tiny_npz, capsys):
    before = tree_state(run_copy)
    with RunDir(run_copy):
        code = pipeline_main(tiny_args(run_copy, tiny_npz))
    assert code == 2
    assert "run folder is in use by another run" in capsys.readouterr().err
    assert tree_state(run_copy) == before


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("{broken", "corrupt manifest"),
        ('{"version": 99, "stages": {}}', "manifest version 99 is not 2"),
        ('["a list"]', "corrupt manifest"),
    ],
)
def test_corrupt_or_foreign_manifest_is_exit_2_and_nothing_changes(run_copy, tiny_npz, capsys, damage, expected):
    (run_copy / "manifest.json").write_text(damage)
    before = tree_state(run_copy)
    assert pipeline_main(tiny_args(run_copy, tiny_npz)) == 2
    err = capsys.readouterr().err
    assert expected in err and "manifest.json" in err
    assert tree_state(run_copy) == before


def test_run_dir_that_is_a_file(tmp_path, tiny_npz, capsys):
    target = tmp_path / "file"
    target.write_text("keep me")
    assert pipeline_main(tiny_args(target, tiny_npz)) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_run_dir_that_is_not_writable(tmp_path, tiny_npz, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() == 0:  # root ignores modes; an immutable folder stops even root
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available to make a folder read-only for root")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        assert pipeline_main(tiny_args(folder, tiny_npz)) == 2
        err = capsys.readouterr().err
        assert str(folder) in err and ("not writable" in err or "not permitted" in err or "denied" in err)
    finally:
        subprocess.run(undo, check=True)
    assert list(folder.iterdir()) == []


def test_bad_data_leaves_an_existing_run_untouched(run_copy, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated zip")
    before = tree_state(run_copy)
    assert pipeline_main(tiny_args(run_copy, bad)) == 2
    assert "not a readable .npz" in capsys.readouterr().err
    assert tree_state(run_copy) == before


def test_model_names_cannot_climb_out_of_the_run_folder(tmp_path):
    run = RunDir(tmp_path)
    for name in ("../escape", "..", ".hidden", "a/b", ""):
        with pytest.raises(InputError, match="not a valid model name"):
            run.model_dir(name)


@pytest.mark.slow
def test_report_escapes_text_from_paths_and_data(tmp_path, tiny_models, eval_npz):
    from reports.__main__ import main as reports_main

    hostile = tmp_path / "<script>alert(1)<" / "m&<b>"
    shutil.copytree(tiny_models["strong"], hostile)
    run_dir = tmp_path / "run"
    analyse_and_gate(run_dir, tiny_models["weak"], hostile, eval_npz)
    assert reports_main(["--run-dir", str(run_dir), "-q"]) == 0
    page = (run_dir / "report" / "index.html").read_text()
    assert "<script>" not in page and "m&<b>" not in page  # the report's own markup may use <b>; the path's may not
    assert "&lt;script&gt;alert(1)&lt;" in page and "m&amp;&lt;b&gt;" in page
    browser = (run_dir / "report" / "slices.html").read_text()
    assert "<script>alert(1)" not in browser and "m&<b>" not in browser  # its data ride as JSON with < escaped
    markdown = (run_dir / "gate" / "summary.md").read_text()
    assert "<script>" not in markdown


# Interrupted runs -----------------------------------------------------------------------------------------------


def interrupted_args(run_dir: Path, data: Path) -> list[str]:
    """The 3- and 6-epoch pipeline the interruption tests kill and then run again."""
    return ["--run-dir", str(run_dir), "--data", str(data), "--epochs", "3", "6", "--seed", str(SEED)]


def _kill_when(process: subprocess.Popen, ready, signum=signal.SIGKILL, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run finished before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.005)
    process.send_signal(signum)
    process.wait()


def _staging(folder: Path, prefix: str):
    return lambda: folder.is_dir() and any(p.name.startswith(prefix) and ".tmp" in p.name for p in folder.iterdir())


def _events_written(run_dir: Path):
    return lambda: any((run_dir / "logs").rglob("events.out.tfevents.*")) if (run_dir / "logs").exists() else False


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["training", "export", "analysis"])
def test_sigkill_never_leaves_a_run_that_looks_finished(tmp_path, tiny_npz, moment, capsys):
    run_dir = tmp_path / "run"
    process = start_command("pipeline", *interrupted_args(run_dir, tiny_npz))
    ready = {
        "training": _events_written(run_dir),
        "export": _staging(run_dir / "models", ".epochs-"),
        "analysis": _staging(run_dir, ".analysis."),
    }[moment]
    _kill_when(process, ready)

    manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").exists() else {}
    stages = manifest.get("stages", {})
    assert "gate" not in stages and "analysis" not in stages
    if moment in ("training", "export"):
        assert "training" not in stages
    else:
        assert stages["training"]["status"] == "done"
    # The gate refuses a killed run ...
    assert gate_main(["--run-dir", str(run_dir), "-q"]) == 2
    capsys.readouterr()
    # ... and the same command finishes the job, reusing what was complete.
    rerun = run_pipeline(*interrupted_args(run_dir, tiny_npz), timeout=900)
    # Seeded and deterministic: this run's 6-epoch model beats its 3-epoch one and no class shows a drop.
    assert rerun.returncode == 0 and "gate: PASSED" in rerun.stdout, rerun.stderr[-2000:]
    if moment == "analysis":
        assert "training: reused" in rerun.stdout
    leftovers = [p for p in run_dir.rglob(".*") if ".tmp" in p.name or ".old-" in p.name]
    assert leftovers == []
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["gate"]["status"] == "done"


def _exact(summary: dict) -> dict:
    models = {
        role: {sid: {k: v for k, v in values.items() if k != "crossentropy"} for sid, values in slices.items()}
        for role, slices in summary["models"].items()
    }
    return {"models": models, "deltas": summary["deltas"], "paired": summary["paired"]}


@pytest.mark.slow
def test_a_killed_retrain_into_a_finished_folder_leaves_nothing_judged(run_copy, tiny_npz, capsys):
    """SIGTERM while a finished run retrains (another seed): no stale analysis, gate or PASS survives."""
    from analysis.__main__ import main as analysis_main

    args = ["--run-dir", str(run_copy), "--data", str(tiny_npz), "--epochs", "1", "2", "--seed", "8"]
    process = start_command("pipeline", *args)
    _kill_when(process, _events_written_after(run_copy, time.time()), signal.SIGTERM)
    stages = json.loads((run_copy / "manifest.json").read_text())["stages"]
    assert not {"training", "analysis", "gate", "report"} & set(stages)
    for name in ("gate/verdict.json", "gate/summary.md", "report/index.html", "report/summary.md"):
        assert not (run_copy / name).exists(), name
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 2
    assert analysis_main(["--run-dir", str(run_copy), "--baseline", "epochs-1", "--candidate", "epochs-2", "-q"]) == 2
    assert "no finished training" in capsys.readouterr().err


def _events_written_after(run_dir: Path, since: float):
    def ready() -> bool:
        # Training clears and rewrites these folders while we look: a file may vanish mid-scan.
        try:
            return any(path.stat().st_mtime > since for path in (run_dir / "logs").rglob("events.out.tfevents.*"))
        except FileNotFoundError:
            return False

    return ready


# Concurrency ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_pipelines_at_once_match_a_run_alone(tmp_path, tiny_npz, tiny_run):
    processes = [start_command("pipeline", *tiny_args(tmp_path / name, tiny_npz)) for name in ("a", "b")]
    codes = [process.wait(timeout=900) for process in processes]
    alone = json.loads((tiny_run / "analysis" / "summary.json").read_text())
    for name, code in zip(("a", "b"), codes):
        assert code == 0
        together = json.loads((tmp_path / name / "analysis" / "summary.json").read_text())
        # Exact: counts, accuracies, paired counts, intervals. A float mean follows Beam's bundles
        # (which follow machine load), so cross-entropy agrees to float32 rounding only.
        assert _exact(together) == _exact(alone)
        for role, slices in alone["models"].items():
            for sid, values in slices.items():
                assert together["models"][role][sid]["crossentropy"] == pytest.approx(values["crossentropy"], rel=1e-6)


@pytest.mark.slow
def test_second_pipeline_on_a_busy_run_folder_is_refused(tmp_path, tiny_npz):
    run_dir = tmp_path / "busy"
    first = start_command("pipeline", *interrupted_args(run_dir, tiny_npz))
    try:
        assert first.stdout.readline().startswith("run folder:")
        second = run_pipeline(*tiny_args(run_dir, tiny_npz))
        assert second.returncode == 2
        assert f"error: {run_dir}: run folder is in use by another run" in second.stderr
    finally:
        first.kill()
        first.wait()
