"""The stages declared once: what reads the declaration gets it right."""

from __future__ import annotations

import argparse
import json

import pytest

from evalsuite.run import stages
from evalsuite.run.folder import RunDir


def test_every_forwarded_option_is_a_flag_of_the_stage_command():
    """The gate has the analysis run through its declaration: each flag it forwards must exist there."""
    from analysis.__main__ import main as analysis_main  # noqa: F401 - the command the declaration names
    from evalsuite.cli import add_analysis_args, new_parser

    parser = new_parser("python -m analysis", None, new_run_allowed=False)
    add_analysis_args(parser)
    flags = {flag for action in parser._actions for flag in action.option_strings}
    analysis = stages.stage("analysis")
    assert analysis.command == "analysis" and analysis.forwarded
    for option, flag, kind in analysis.forwarded:
        assert flag in flags, flag
        parsed = parser.parse_args([flag, "7"] if kind == "value" else [flag])
        assert getattr(parsed, option) is not None, option
    args = argparse.Namespace(run_dir="RUN", baseline=None, candidate="c", eval_data=None, rules=None, seed=7)
    args.force, args.jackknife, args.quiet = True, False, True
    assert analysis.command_line(args)[1:] == [
        "-m",
        "analysis",
        "--run-dir",
        "RUN",
        "--candidate",
        "c",
        "--seed",
        "7",
        "--force",
        "-q",
    ]


def test_each_entry_is_a_function_and_code_fingerprints_follow_the_declaration():
    from evalsuite.run.stage_code import STAGE_ENTRY

    for stage in stages.STAGES:
        assert callable(stage.function()), stage.entry
    assert STAGE_ENTRY == {"training": "training.train", "analysis": "analysis.evaluate", "report": "reports.build"}


def test_invalidation_removes_the_stage_and_every_later_one_with_their_verdict_files(run_copy):
    run = RunDir(run_copy)
    assert (run_copy / "gate" / "verdict.json").exists() and (run_copy / "report" / "index.html").exists()
    run.invalidate_from("analysis")
    assert set(run.read_manifest()["stages"]) == {"data", "training"}
    for stage in stages.downstream("analysis"):
        for path in stage.verdict_files:
            assert not (run_copy / path).exists(), path


def test_the_one_writer_refuses_a_record_that_does_not_match_its_schema(run_copy):
    run = RunDir(run_copy)
    before = (run_copy / "manifest.json").read_bytes()
    with pytest.raises(
        ValueError, match="gate stage's record does not match its schema: verdict_fingerprint is missing"
    ):
        run.record_stage("gate", {"passed": True, "state": "passed", "judged": {}, "outputs": {}})
    assert (run_copy / "manifest.json").read_bytes() == before
    record = json.loads(before)["stages"]["gate"]
    assert stages.record_problem("gate", record) is None
    assert stages.record_problem("gate", {**record, "status": "running"}) == "status 'running' is not 'done'"
