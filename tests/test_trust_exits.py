"""Exit 0 and 1 come only from a verdict; a rule is off only when a file says so; nothing is deleted
that the product did not write; bad input leaves a finished run byte for byte as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.__main__ import main as analysis_main
from gates.__main__ import main as gate_main
from pipeline.run import main as pipeline_main
from tests.helpers import SEED, error_lines, run_command, run_pipeline
from tests.test_reliability import tiny_args, tree_state

FACTORY = """
import keras

def build(input_shape, num_classes):
    {body}
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])
"""


def _factory(folder: Path, body: str = "pass", top: str = "") -> str:
    path = folder / "factory.py"
    path.write_text(top + FACTORY.format(body=body))
    return f"{path}:build"


# 1. An exit code is a verdict, or exit 2 ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "top, body, said",
    [
        ("import sys\nsys.exit(0)\n", "pass", "called exit(0)"),
        ("", "import sys; sys.exit(1)", "called exit(1)"),
        ("", "import os; os._exit(0)", "ended its process (exit 0)"),
        ("", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
        ("", "while True: pass", "did not return within"),
    ],
    ids=["exit-at-import", "exit-1", "hard-exit", "sigkill", "endless-loop"],
)
def test_a_factory_that_ends_the_process_is_exit_2_and_the_finished_run_stands(run_copy, tiny_npz, tmp_path, top, body, said):
    model = _factory(tmp_path, body, top)
    before = tree_state(run_copy)
    limit = {"EVALSUITE_FACTORY_TIMEOUT": "45"}  # the endless loop's; the others return long before
    done = run_command("pipeline", *tiny_args(run_copy, tiny_npz, "--model", model), timeout=600, env=limit)
    lines = error_lines(done.stderr)
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and said in lines[0] and "factory.py" in lines[0], lines
    assert tree_state(run_copy) == before


@pytest.mark.slow
def test_user_code_that_exits_after_the_check_is_exit_2_never_green(tmp_path, tiny_npz):
    """A factory that behaves once and ends the process the second time: the outer process vouches for nothing."""
    marker = tmp_path / "called-once"
    model = _factory(tmp_path, f"import os, pathlib\n    m = pathlib.Path({str(marker)!r})\n"
                     "    if m.exists(): os._exit(0)\n    m.write_text('x')")  # fmt: skip
    done = run_pipeline(*tiny_args(tmp_path / "run", tiny_npz, "--model", model), timeout=600)
    lines = error_lines(done.stderr)
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and "wrote no verdict" in lines[0] and "factory.py:build" in lines[0], lines


def test_one_epoch_count_or_a_model_as_its_own_baseline_is_a_usage_error(tmp_path, tiny_npz, run_copy, capsys):
    fresh = tmp_path / "fresh"
    assert pipeline_main(["--run-dir", str(fresh), "--data", str(tiny_npz), "--epochs", "3", "-q"]) == 2
    assert "one epoch count" in capsys.readouterr().err and not fresh.exists()
    before = tree_state(run_copy)
    assert pipeline_main(tiny_args(run_copy, tiny_npz, "--baseline", "epochs-2")) == 2
    assert "the candidate itself" in capsys.readouterr().err
    args = ["--run-dir", str(run_copy), "--baseline", "epochs-2", "--candidate", "epochs-2", "-q"]
    assert analysis_main(args) == 2
    assert "same model" in capsys.readouterr().err
    assert tree_state(run_copy) == before


# 2. A rule is off only when someone says so -------------------------------------------------------------------


def test_keys_left_out_take_the_defaults_and_off_takes_a_word(run_copy, tmp_path, capsys):
    rules = tmp_path / "floor-only.toml"
    rules.write_text("[overall]\nmin_accuracy = 0.5\n")
    assert _analyse_and_gate(run_copy, rules) == 0
    verdict = json.loads((run_copy / "gate" / "verdict.json").read_text())
    assert {check["rule"] for check in verdict["checks"]} >= {"overall improvement", "overall floor"}
    assert any(check["slice"].startswith("label=") for check in verdict["checks"])
    in_force = verdict["rules_in_force"]
    assert f"overall.min_accuracy = 0.5 ({rules})" in in_force
    assert "per_class.max_drop = 0.03 (built-in default)" in in_force
    assert "Rules in force:" in (run_copy / "gate" / "summary.md").read_text()

    rules.write_text('[overall]\nmin_accuracy = 0.5\n[per_class]\nmax_drop = "off"\n')
    assert _analyse_and_gate(run_copy, rules) == 0
    verdict = json.loads((run_copy / "gate" / "verdict.json").read_text())
    assert not any(check["slice"].startswith("label=") for check in verdict["checks"])
    assert f"per_class.max_drop = off ({rules})" in verdict["rules_in_force"]
    capsys.readouterr()


def _analyse_and_gate(run: Path, rules: Path) -> int:
    assert analysis_main(["--run-dir", str(run), "--rules", str(rules), "-q"]) == 0
    return gate_main(["--run-dir", str(run), "--rules", str(rules), "-q"])


def test_a_drop_rule_alone_keeps_the_improvement_rule(tmp_path):
    from evalsuite.rules.settings import parse_rules

    rules = parse_rules({"per_class": {"max_drop": 0.05}}, "drop-only.toml")
    assert rules.min_improvement == 0.0 and rules.max_drop == 0.05


def test_off_is_only_for_rules(tmp_path):
    from evalsuite.errors import InputError
    from evalsuite.rules.settings import parse_rules

    with pytest.raises(InputError, match='significance.alpha cannot be "off"'):
        parse_rules({"significance": {"alpha": "off"}}, "g.toml")


# 3. Nothing deleted that the product did not write -------------------------------------------------------------


def test_a_folder_without_a_manifest_is_not_a_run_folder(tmp_path, tiny_npz, capsys):
    project = tmp_path / "project"
    photos = project / "data" / "photos"
    photos.mkdir(parents=True)
    (photos / "cat.png").write_bytes(b"not really a png, but the user's")
    before = tree_state(project)
    assert pipeline_main(["--run-dir", str(project), "--data", str(photos), "-q"]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "manifest.json" in err
    assert tree_state(project) == before and sorted(p.name for p in project.iterdir()) == ["data"]

    report = tmp_path / "site" / "report"
    report.mkdir(parents=True)
    (report / "index.html").write_text("<p>someone's page</p>")
    assert gate_main(["--run-dir", str(tmp_path / "site"), "-q"]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert (report / "index.html").read_text() == "<p>someone's page</p>"


def test_an_empty_or_dot_run_dir_is_a_usage_error(tmp_path, tiny_npz):
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "keep.py").write_text("x = 1\n")
    for given in ("", "."):
        done = run_command("pipeline", "--run-dir", given, "--data", str(tiny_npz), "-q", cwd=tmp_path, timeout=300)
        assert done.returncode == 2 and "--run-dir" in done.stderr, done.stderr
        assert len(error_lines(done.stderr)) == 1
    assert (tmp_path / "analysis" / "keep.py").read_text() == "x = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis"]


def test_data_inside_a_folder_the_run_replaces_is_refused(run_copy, capsys):
    inside = run_copy / "data"
    before = tree_state(run_copy)
    assert pipeline_main(["--run-dir", str(run_copy), "--data", str(inside), "--epochs", "1", "2", "-q"]) == 2
    assert "which this run replaces" in capsys.readouterr().err
    assert tree_state(run_copy) == before


@pytest.mark.parametrize(
    "extra, rules, said",
    [
        (["--optimizer", "nosuch"], None, "not a Keras optimizer"),
        (["--bless", "{file}"], None, "not a folder"),
        ([], "[churn]\nmax_excess_newly_wrong = 0.02\n[overall]\nmin_improvement = \"off\"\n"
             "[per_class]\nmax_drop = \"off\"\n", "no rule judges a single seed"),
    ],
    ids=["bad-optimizer", "bless-a-file", "churn-only-one-seed"],
)  # fmt: skip
def test_refusals_leave_a_finished_run_byte_for_byte(run_copy, tiny_npz, tmp_path, capsys, extra, rules, said):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a registry")
    extra = [arg.replace("{file}", str(a_file)) for arg in extra]
    if rules is not None:
        (tmp_path / "rules.toml").write_text(rules)
        extra += ["--rules", str(tmp_path / "rules.toml")]
    before = tree_state(run_copy)
    assert pipeline_main(tiny_args(run_copy, tiny_npz, *extra)) == 2
    assert said in capsys.readouterr().err
    assert tree_state(run_copy) == before
    if rules is not None:  # the gate alone refuses it before it touches the verdict, too
        assert gate_main(["--run-dir", str(run_copy), "--rules", str(tmp_path / "rules.toml"), "-q"]) == 2
        assert tree_state(run_copy) == before


def test_data_auto_keeps_the_folders_own_data_and_class_names_apply(run_copy, capsys):
    models = tree_state(run_copy / "models")
    args = ["--run-dir", str(run_copy), "--epochs", "1", "2", "--seed", str(SEED)]
    assert pipeline_main(args) == 0
    out = capsys.readouterr()
    assert "keeps this run folder's data" in out.err + out.out
    assert tree_state(run_copy / "models") == models

    names = [f"kind {c}" for c in range(10)]
    assert pipeline_main([*args, "-q", "--data", _data_of(run_copy), "--class-names", ",".join(names)]) == 0
    assert tree_state(run_copy / "models") == models  # names do not shape the models
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    assert summary["eval_data"]["class_names"] == names


def _data_of(run: Path) -> str:
    return json.loads((run / "manifest.json").read_text())["stages"]["data"]["requested"]


# 7. A factory's own imports ------------------------------------------------------------------------------------


def test_a_factory_imports_its_helpers_and_they_are_fingerprinted(tmp_path):
    from evalsuite.data.spec import DataSpec
    from training.model import build_model, factory_files, model_fingerprint

    (tmp_path / "helper.py").write_text("WIDTH = 8\n")
    (tmp_path / "later.py").write_text("DEPTH = 1\n")
    # One helper imported with the module, one inside the factory, when it is called.
    model = _factory(tmp_path, body="from later import DEPTH", top="from helper import WIDTH\n")
    built = build_model(DataSpec(6, 6, 1, 3), model)
    assert built.outputs[0].shape[-1] == 3
    assert [p.name for p in factory_files(model)] == ["factory.py", "helper.py", "later.py"]
    before = model_fingerprint(model)
    (tmp_path / "helper.py").write_text("WIDTH = 16\n")
    assert model_fingerprint(model) != before


def test_a_former_section_name_is_still_read_with_a_note(tmp_path):
    from evalsuite.errors import InputError
    from evalsuite.rules.settings import parse_rules

    rules = parse_rules({"per_digit": {"max_drop": 0.05}}, "old.toml")
    assert rules.max_drop == 0.05 and rules.notes == ("old.toml: [per_digit] is read as [per_class], its current name",)
    assert "per_class.max_drop = 0.05 (old.toml)" in rules.in_force()
    assert rules.key() == parse_rules({"per_class": {"max_drop": 0.05}}, "new.toml").key()
    with pytest.raises(InputError, match=r"\[per_digit\] and \[per_class\] are one section"):
        parse_rules({"per_digit": {"max_drop": 0.05}, "per_class": {"max_drop": 0.05}}, "both.toml")


def test_the_offline_data_line_says_why_in_few_words():
    from evalsuite.data.datasets import KERAS_CACHE, _load_named

    if KERAS_CACHE.is_file():
        pytest.skip("a cached MNIST is read, never downloaded")
    lines = []
    _load_named("auto", 42, lines.append)
    fallback = [line for line in lines if "full MNIST unavailable" in line]
    if not fallback:
        pytest.skip("MNIST's download is reachable from here")
    assert len(fallback[0]) <= 200 and "download failed" in fallback[0], fallback[0]


def test_what_ran_names_unset_settings_by_what_they_mean():
    from reports.html_report import settings_text

    text = settings_text({"epochs": [3, 6], "learning_rate": None, "image_size": None, "optimizer": "adam"})
    assert text == "epochs=[3, 6], learning_rate=the optimizer's default, image_size=as the data, optimizer=adam"
    assert "None" not in text


def test_the_rules_own_defaults_are_the_settings_defaults():
    from evalsuite.rules.settings import SETTINGS, GateRules

    built = GateRules()
    assert {s.key: getattr(built, s.field) for s in SETTINGS} == {s.key: s.default for s in SETTINGS}


@pytest.mark.parametrize(
    "code, receipt, said",
    [
        (0, {}, "wrote no verdict"),
        (1, {"exit": 0, "verdict": "{v}", "sha256": "{sha}"}, "wrote no verdict"),
        (0, {"exit": 0, "verdict": "{v}", "sha256": "0" * 64}, "changed after it was written"),
        (1, {"exit": 1, "verdict": "{v}", "sha256": "{sha}"}, "does not say failed"),
        (-9, {}, "killed by SIGKILL"),
        (-40, {}, "killed by signal 40"),
        (3, {}, "ended with exit 3 before a verdict"),
    ],
)
def test_the_outer_process_vouches_only_for_a_verdict_that_says_so(tmp_path, capsys, code, receipt, said):
    import hashlib

    from pipeline.supervise import vouch

    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps({"passed": True, "state": "passed"}))
    sha = hashlib.sha256(verdict.read_bytes()).hexdigest()
    receipt = {k: (v.replace("{v}", str(verdict)).replace("{sha}", sha) if isinstance(v, str) else v)
               for k, v in receipt.items()}  # fmt: skip
    assert vouch(code, receipt, f"{tmp_path}/f.py:build") == 2
    err = capsys.readouterr().err
    assert said in err and "f.py:build" in err and err.count("\n") == 1
    assert vouch(0, {"exit": 0, "verdict": str(verdict), "sha256": sha}, None) == 0
    assert vouch(2, {"exit": 2}, None) == 2 and capsys.readouterr().err == ""


def test_a_registry_flag_that_is_the_working_folder_is_refused():
    from evalsuite.cli import check_registry_folder
    from evalsuite.errors import InputError

    for given in ("", "."):
        with pytest.raises(InputError, match="name the registry folder"):
            check_registry_folder(Path(given), "--bless")


def test_a_file_beside_the_registrys_entries_is_ignored_not_fatal(tmp_path):
    from evalsuite import registry

    (tmp_path / "README.md").write_text("our blessed models\n")
    warned = []
    assert registry.newest(tmp_path, warn=warned.append) is None
    assert "not a registry entry" in warned[0]


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "0", "0x0", "0.0"])
def test_every_spelling_of_every_interface_is_refused(host):
    from reports.host_check import check_bind_host

    assert check_bind_host(host) is not None
    assert check_bind_host("127.0.0.1") is None


def test_finding_a_package_factory_runs_none_of_its_code(tmp_path, monkeypatch):
    from training.model import factory_source

    package = tmp_path / "teammodels"
    package.mkdir()
    marker = tmp_path / "ran"
    (package / "__init__.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n")
    (package / "nets.py").write_text("def build(input_shape, num_classes):\n    raise SystemExit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert factory_source("teammodels.nets:build") == (package / "nets.py").resolve()
    assert not marker.exists()
