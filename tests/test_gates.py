"""The gate: TFMA validation with tiny real models, failing closed, read by CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from evalsuite.datasets import Dataset, save_npz
from gates.__main__ import main as gate_main
from gates.rules import inclusive_drop_bound, strict_change_bound


def run_gate(run_dir: Path, baseline: Path | str, candidate: Path | str, eval_data: Path, *extra: str) -> int:
    return gate_main(
        [
            "--run-dir",
            str(run_dir),
            "--baseline",
            str(baseline),
            "--candidate",
            str(candidate),
            "--eval-data",
            str(eval_data),
            "-q",
            *extra,
        ]
    )


def verdict(run_dir: Path) -> dict:
    return json.loads((run_dir / "gate" / "verdict.json").read_text())


def test_strict_and_inclusive_bounds_are_exact_on_accuracy_steps():
    n = 1000
    bound = strict_change_bound(0.0, n)
    assert 0 < bound < 1 / n  # a tie fails, one more correct example passes
    assert np.float32(1 / n) >= bound and np.float32(0.0) < bound
    assert 0.04 < strict_change_bound(0.04, 100) < 0.05  # 0.04 itself (float32 0.04000002) does not pass
    assert -0.04 < inclusive_drop_bound(0.03, 100) < -0.03  # -0.03 (float32 -0.030000001) passes
    assert -0.02 < inclusive_drop_bound(0.0, 100) < 0


def test_identical_models_fail_as_no_improvement(tmp_path, tiny_models, eval_npz, capsys):
    code = run_gate(tmp_path, tiny_models["strong"], tiny_models["strong"], eval_npz, "--no-intervals")
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL overall improvement" in out and "delta +0.0000" in out
    overall = verdict(tmp_path)["checks"][0]
    assert overall["rule"] == "overall improvement" and overall["delta"] == 0 and not overall["passed"]


def test_better_model_passes_and_swapped_roles_fail(tmp_path, tiny_models, eval_npz, capsys):
    assert run_gate(tmp_path / "forward", tiny_models["weak"], tiny_models["strong"], eval_npz) == 0
    forward = verdict(tmp_path / "forward")
    assert forward["passed"] and all(check["passed"] for check in forward["checks"])
    assert forward["checks"][0]["interval"] is not None  # deltas are reported with their interval
    assert run_gate(tmp_path / "swapped", tiny_models["strong"], tiny_models["weak"], eval_npz) == 1
    assert not verdict(tmp_path / "swapped")["passed"]
    assert "FAIL overall improvement" in capsys.readouterr().out


def test_better_overall_but_worse_on_one_digit_fails_naming_the_digit(tmp_path, tiny_models, eval_npz, capsys):
    code = run_gate(tmp_path, tiny_models["weak"], tiny_models["no_sevens"], eval_npz, "--no-intervals")
    out = capsys.readouterr().out
    assert code == 1
    result = verdict(tmp_path)
    overall = result["checks"][0]
    assert overall["passed"] and overall["delta"] > 0
    failed = [check for check in result["checks"] if not check["passed"]]
    assert [check["slice"] for check in failed] == ["label=7"]
    assert "FAIL per-digit drop [label=7] digit 7: accuracy baseline" in out

    suite = ET.parse(tmp_path / "gate" / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == 11 and int(suite.get("failures")) == 1
    failure = suite.find("testcase/failure")
    for word in ("digit 7", "accuracy", "baseline", "candidate", "delta", "needs delta >= -0.03"):
        assert word in failure.get("message")
    summary = (tmp_path / "gate" / "summary.md").read_text()
    assert "Model gate FAILED" in summary and "| per-digit drop | label=7 |" in summary


def test_step_summary_is_appended_for_github(tmp_path, tiny_models, eval_npz, monkeypatch):
    step_summary = tmp_path / "step.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    run_gate(tmp_path / "run", tiny_models["weak"], tiny_models["strong"], eval_npz, "--no-intervals")
    text = step_summary.read_text()
    assert text.startswith("earlier step\n") and "Model gate PASSED" in text


def test_significance_rule_uses_the_interval(tmp_path, tiny_models, eval_npz, capsys):
    rules = tmp_path / "gate.toml"
    rules.write_text("[overall]\nmin_improvement = 0.0\n[significance]\nrequire = true\n")
    code = run_gate(tmp_path / "run", tiny_models["weak"], tiny_models["strong"], eval_npz, "--rules", str(rules))
    checks = {check["rule"]: check for check in verdict(tmp_path / "run")["checks"]}
    significant = checks["significant improvement"]
    assert significant["passed"] == (significant["interval"][0] > 0)
    assert code == (0 if significant["passed"] else 1)


def test_gap_to_overall_rule_checks_every_digit(tmp_path, tiny_models, eval_npz):
    rules = tmp_path / "gate.toml"
    rules.write_text("[overall]\nmin_improvement = 0.0\n[gap_to_overall]\nmax_gap = 0.5\n")
    assert (
        run_gate(
            tmp_path / "run",
            tiny_models["weak"],
            tiny_models["no_sevens"],
            eval_npz,
            "--rules",
            str(rules),
            "--no-intervals",
        )
        == 1
    )
    gaps = [check for check in verdict(tmp_path / "run")["checks"] if check["rule"] == "gap to overall"]
    assert len(gaps) == 10
    assert [check["slice"] for check in gaps if not check["passed"]] == ["label=7"]


def test_missing_class_is_a_missing_slice_not_a_pass(tmp_path, tiny_models, bundled, capsys):
    subset = bundled.subset(None, 300, 3)
    keep = subset.y_test != 4
    path = tmp_path / "no_fours.npz"
    save_npz(path, Dataset(subset.x_test[:5], subset.y_test[:5], subset.x_test[keep], subset.y_test[keep], "x"))
    code = run_gate(tmp_path / "run", tiny_models["weak"], tiny_models["strong"], path, "--no-intervals")
    err = capsys.readouterr().err
    assert code == 2
    assert "label=4 is missing" in err and err.count("\n") == 1


@pytest.mark.parametrize("breakage", ["corrupt summary", "missing validation", "no analysis"])
def test_broken_analysis_is_exit_2(run_copy, breakage, capsys):
    analysis = run_copy / "analysis"
    if breakage == "corrupt summary":
        (analysis / "summary.json").write_text("{not json")
        expected = "corrupt analysis summary"
    elif breakage == "missing validation":
        (analysis / "validation.json").unlink()
        expected = "validation result"
    else:
        import shutil

        shutil.rmtree(analysis)
        expected = "missing"
    code = gate_main(["--run-dir", str(run_copy), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1


def test_not_a_saved_model_is_exit_2(tmp_path, tiny_models, eval_npz, capsys):
    fake = tmp_path / "fake_model"
    fake.mkdir()
    (fake / "weights.bin").write_bytes(b"\x00")
    assert run_gate(tmp_path / "run", tiny_models["weak"], fake, eval_npz) == 2
    assert f"{fake}: candidate model is not a SavedModel" in capsys.readouterr().err


def test_rules_changed_since_analysis_are_refused(run_copy, tmp_path, capsys):
    rules = tmp_path / "other.toml"
    rules.write_text("[per_digit]\nmax_drop = 0.2\n")
    assert gate_main(["--run-dir", str(run_copy), "--rules", str(rules), "-q"]) == 2
    assert "analysis was run with other gate rules" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[overall]\nmin_improvment = 0.0\n", "unknown key overall.min_improvment"),
        ("[overal]\nmin_improvement = 0.0\n", "unknown section [overal]"),
        ("[per_digit]\nmax_drop = 'a lot'\n", "per_digit.max_drop must be a number"),
        ("[per_digit]\nmax_drop = -0.1\n", "per_digit.max_drop must be a fraction in 0..1"),
        ("[overall]\nmin_improvement = 1.0\n", "can never be met"),
        ("[significance]\nrequire = 1\n", "significance.require must be true or false"),
        ("[significance]\nrequire = false\n", "no rules configured"),
        ("", "no rules configured"),
        ("[overall\n", "not valid TOML"),
    ],
)
def test_bad_rules_are_usage_errors_naming_the_key(run_copy, tmp_path, capsys, text, expected):
    rules = tmp_path / "gate.toml"
    rules.write_text(text)
    assert gate_main(["--run-dir", str(run_copy), "--rules", str(rules), "-q"]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(rules) in err and err.count("\n") == 1


def test_shipped_gate_toml_matches_the_built_in_defaults():
    from gates.rules import DEFAULT_RULES, load_rules, parse_rules

    shipped = load_rules(Path(__file__).parents[1] / "gate.toml")
    built_in = parse_rules(DEFAULT_RULES, "defaults")
    assert {**shipped.as_dict(), "source": ""} == {**built_in.as_dict(), "source": ""}
