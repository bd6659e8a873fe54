"""The gate: TFMA validation plus paired statistics on tiny real models, failing closed, read by CI."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from evalsuite.data.datasets import Dataset
from evalsuite.data.files import save_npz
from gates.__main__ import main as gate_main
from tests.helpers import analyse_and_gate


def verdict(run_dir: Path) -> dict:
    return json.loads((run_dir / "gate" / "verdict.json").read_text())


@pytest.mark.slow
def test_identical_models_fail_as_no_improvement(tmp_path, tiny_models, eval_npz, capsys):
    """A byte-identical copy (the same model given twice is a usage error instead: see test_trust_exits)."""
    import shutil

    twin = shutil.copytree(tiny_models["strong"], tmp_path / "strong-twin")
    code = analyse_and_gate(tmp_path / "run", tiny_models["strong"], twin, eval_npz)
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL overall improvement" in out and "delta +0.0000" in out
    overall = verdict(tmp_path / "run")["checks"][0]
    assert overall["rule"] == "overall improvement" and overall["delta"] == 0 and not overall["passed"]
    # No disagreement at all is still not certainty: the interval has width.
    assert overall["counts"]["newly_right"] == overall["counts"]["newly_wrong"] == 0
    low, high = overall["interval"]
    assert low < 0 < high


def test_better_model_passes_with_its_evidence(tiny_run):
    forward = verdict(tiny_run)
    assert forward["state"] == "passed" and all(check["passed"] for check in forward["checks"])
    overall = forward["checks"][0]
    assert overall["interval"][0] <= overall["delta"] <= overall["interval"][1]
    assert overall["p_value"] < 0.05 and overall["conclusive"]


@pytest.mark.slow
def test_swapped_roles_fail(tmp_path, tiny_models, eval_npz, capsys):
    assert analyse_and_gate(tmp_path / "swapped", tiny_models["strong"], tiny_models["weak"], eval_npz) == 1
    assert not verdict(tmp_path / "swapped")["passed"]
    assert "FAIL overall improvement" in capsys.readouterr().out


def test_planted_regression_on_one_digit_is_caught_and_named(planted):
    """A candidate that never predicts 7 (named Sneaker beside the data): every per-class rule fails on it alone."""
    run_dir, code, _ = planted
    assert code == 1
    result = verdict(run_dir)
    for rule in ("per-class drop", "gap to overall", "churn"):
        failed = [check["slice"] for check in result["checks"] if check["rule"] == rule and check["status"] == "fail"]
        assert failed == ["label=7"], rule
    seven = next(c for c in result["checks"] if c["rule"] == "per-class drop" and c["slice"] == "label=7")
    assert seven["candidate"] == 0 and seven["conclusive"] and seven["p_value"] < 0.005
    assert seven["counts"]["newly_wrong"] == round(seven["baseline"] * 50) and seven["counts"]["newly_right"] == 0
    assert "Sneaker: accuracy baseline" in seven["message"] and "95% CI" in seven["message"]
    churn = next(c for c in result["checks"] if c["rule"] == "churn" and c["slice"] == "label=7")
    assert churn["candidate"] == churn["counts"]["newly_wrong"] / 50 > 0.2
    assert len([c for c in result["checks"] if c["rule"] == "churn"]) == 11

    suite = ET.parse(run_dir / "gate" / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == len(result["checks"]) and int(suite.get("failures")) >= 3
    messages = [f.get("message") for f in suite.iter("failure")]
    assert any("Sneaker" in m and "95% CI" in m and "p " in m for m in messages)
    summary = (run_dir / "gate" / "summary.md").read_text()
    assert "Model gate FAILED" in summary and "| per-class drop | Sneaker |" in summary


def test_the_console_names_the_failing_digit(planted, tmp_path, capsys):
    import shutil

    run_dir, _, rules = planted
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"))
    assert gate_main(["--run-dir", str(copy), "--rules", str(rules)]) == 1
    assert "FAIL per-class drop [Sneaker] Sneaker: accuracy baseline" in capsys.readouterr().out


def one_sided_mid_p(newly_right: int, newly_wrong: int) -> float:
    """McNemar's exact one-sided mid-p that the candidate is better, from the binomial law itself.

    Given d disagreements, newly right ~ Binomial(d, 1/2) when neither model is
    better: P(X > newly right) + P(X = newly right) / 2.
    """
    d = newly_right + newly_wrong
    above = sum(math.comb(d, x) for x in range(newly_right + 1, d + 1))
    return (above + math.comb(d, newly_right) / 2) / 2**d


def test_one_sided_mid_p_reproduces_a_published_value():
    # Bentur et al. 2009 (1 pair one way, 7 the other): McNemar mid-p 0.039 two-sided, as
    # Fagerland, Lydersen & Laake (2013) give it; one-sided, half of it.
    assert one_sided_mid_p(7, 1) == pytest.approx(0.039 / 2, abs=5e-4)


@pytest.mark.parametrize("fixture", ["planted", "tiny_run"])
def test_significance_rule_uses_the_exact_paired_test(request, fixture):
    """The gate's p-value is the one-sided exact mid-p of its own counts, computed here independently."""
    run_dir = request.getfixturevalue(fixture)
    run_dir = run_dir[0] if isinstance(run_dir, tuple) else run_dir
    checks = [c for c in verdict(run_dir)["checks"] if c["rule"] in ("significant improvement", "overall improvement")]
    assert checks and {c["slice"] for c in checks} == {"overall"}
    for check in checks:
        counts = check["counts"]
        expected = one_sided_mid_p(counts["newly_right"], counts["newly_wrong"])
        assert check["p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-15), check["rule"]
        if check["rule"] == "significant improvement":
            assert check["passed"] == (expected < 0.05)


def test_step_summary_is_appended_for_github(run_copy, tmp_path, monkeypatch):
    step_summary = tmp_path / "step.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 0
    text = step_summary.read_text()
    assert text.startswith("earlier step\n") and "Model gate PASSED" in text


def test_unwritable_step_summary_never_changes_a_passing_exit_code(run_copy, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no" / "such" / "folder" / "step.md"))
    assert gate_main(["--run-dir", str(run_copy), "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: could not append to $GITHUB_STEP_SUMMARY" in err and "the verdict stands" in err


def test_missing_class_is_a_missing_slice_not_a_pass(tmp_path, tiny_models, bundled, capsys):
    subset = bundled.subset(None, 300, 3)
    keep = subset.y_test != 4
    path = tmp_path / "no_fours.npz"
    save_npz(path, Dataset(subset.x_test[:5], subset.y_test[:5], subset.x_test[keep], subset.y_test[keep], "x"))
    code = analyse_and_gate(tmp_path / "run", tiny_models["weak"], tiny_models["strong"], path)
    err = capsys.readouterr().err
    assert code == 2
    assert "no evaluation examples of class 4" in err and "label=4 is missing" in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "gate" / "verdict.json").exists()


def test_not_a_saved_model_is_exit_2(tmp_path, tiny_models, eval_npz, capsys):
    fake = tmp_path / "fake_model"
    fake.mkdir()
    (fake / "weights.bin").write_bytes(b"\x00")
    assert analyse_and_gate(tmp_path / "run", tiny_models["weak"], fake, eval_npz) == 2
    assert f"{fake}: candidate model is not a SavedModel" in capsys.readouterr().err


def test_rules_changed_since_analysis_are_refused_and_no_file_says_passed(run_copy, tmp_path, capsys):
    rules = tmp_path / "other.toml"
    rules.write_text("[per_class]\nmax_drop = 0.2\n")
    assert gate_main(["--run-dir", str(run_copy), "--rules", str(rules), "-q"]) == 2
    assert "analysis was run with other gate rules" in capsys.readouterr().err
    refused = verdict(run_copy)
    assert refused["state"] == "unjudged" and refused["passed"] is False
    assert "UNJUDGED" in (run_copy / "gate" / "summary.md").read_text()
    suite = ET.parse(run_copy / "gate" / "junit.xml").getroot().find("testsuite")
    assert suite.get("errors") == "1"
    assert not (run_copy / "report" / "index.html").exists()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[overall]\nmin_improvment = 0.0\n", "unknown key overall.min_improvment"),
        ("[overal]\nmin_improvement = 0.0\n", "unknown section [overal]"),
        ("[per_class]\nmax_drop = 'a lot'\n", "per_class.max_drop must be a number"),
        ("[per_class]\nmax_drop = -0.1\n", "per_class.max_drop must be a fraction in 0..1"),
        ("[overall]\nmin_improvement = 1.0\n", "can never be met"),
        ("[significance]\nrequire = 1\n", "significance.require must be true or false"),
        ("[significance]\nalpha = 0\n", "significance.alpha must lie strictly between 0 and 1"),
        ("[significance]\nalpha = 1.5\n", "significance.alpha must lie strictly between 0 and 1"),
        ("[significance]\ninconclusive = 'maybe'\n", "significance.inconclusive must be one of"),
        ('[overall]\nmin_improvement = "off"\n[per_class]\nmax_drop = "off"\n', "no rules configured"),
        ('[overall]\nmin_improvement = "off"\n[per_class]\nmax_drop = "off"\n[significance]\nrequire = false\n',
         "no rules configured"),
        ("[significance]\nalpha = 'off'\n", 'significance.alpha cannot be "off"'),
        ("[overall\n", "not valid TOML"),
        ("[overall]\nmin_improvement = 0." + "1" * 70000 + "\n", "over the 65536-byte bound"),
    ],
)
def test_bad_rules_are_usage_errors_naming_the_key(run_copy, tmp_path, capsys, text, expected):
    rules = tmp_path / "gate.toml"
    rules.write_text(text)
    assert gate_main(["--run-dir", str(run_copy), "--rules", str(rules), "-q"]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(rules) in err and err.count("\n") == 1


def test_class_names_beside_the_data_name_the_failing_class_everywhere(planted, tmp_path, capsys):
    """Names from class_names.txt: the check about class 7 reads 'Sneaker' in every file that carries the verdict."""
    import shutil

    from reports.__main__ import main as reports_main

    run_dir = tmp_path / "run"
    shutil.copytree(planted[0], run_dir, ignore=shutil.ignore_patterns(".lock"))
    failing = [c for c in verdict(run_dir)["checks"] if c["status"] == "fail" and c["rule"] == "per-class drop"]
    assert [c["title"] for c in failing] == ["Sneaker"] and failing[0]["message"].startswith("Sneaker: accuracy")
    assert "Sneaker" in (run_dir / "gate" / "junit.xml").read_text()
    assert reports_main(["--run-dir", str(run_dir), "-q"]) == 0
    assert "Sneaker" in (run_dir / "report" / "summary.md").read_text()
    page = (run_dir / "report" / "index.html").read_text()
    assert "Sneaker" in page and "digit 7" not in page
