"""python -m gates: pass or fail the candidate against the baseline.

Exit codes: 0 the gate passes, 1 the rules say no, 2 bad input or usage
(the gate's files then say "unjudged", never passed). Writes
RUN/gate/verdict.json, junit.xml and summary.md (also appended to
$GITHUB_STEP_SUMMARY when set).

Examples:
    python -m gates --run-dir runs/demo
    python -m gates --run-dir runs/demo --baseline blessed:registry --bless registry
    python -m gates history --registry registry
    python -m gates --run-dir runs/demo --baseline /models/accepted --candidate epochs-6
    python -m gates --run-dir runs/demo --rules strict-gate.toml

With --baseline, --candidate, --eval-data or --force the models are analysed
first (by `python -m analysis`, in its own process). `--baseline blessed:DIR`
is the newest model in the registry DIR; `--bless DIR` adds the candidate to
it when, and only when, the gate passes.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

from evalsuite.cli import add_analysis_args, add_bless_arg, check_registry_folder, command_args, new_parser, open_run
from evalsuite.errors import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_INTERRUPTED, EXIT_OK, InputError, run_cli
from evalsuite.run import stages


def main(argv: list[str] | None = None) -> int:
    own_args, beam_args = command_args(argv)
    if own_args[:1] == ["history"]:
        return history(own_args[1:])
    parser = new_parser("python -m gates", __doc__, new_run_allowed=False)
    add_analysis_args(parser, on_demand=True)
    add_bless_arg(parser)
    args = parser.parse_args(own_args)

    def work() -> int:
        from evalsuite.rules.settings import load_rules
        from evalsuite.run.contract import VERDICT_NAME
        from gates.gate import gate
        from gates.outputs import write_unjudged

        rules = load_rules(args.rules)
        check_registry_folder(args.bless, "--bless")
        if args.run_dir is not None and args.run_dir.is_dir():
            from evalsuite.run.folder import RunDir

            rules.check_judges(RunDir(args.run_dir).trained_seeds())  # before the analysis is redone for them
        requested = args.baseline is not None or args.candidate is not None or args.eval_data or args.force
        if requested:
            if args.run_dir is None or not args.run_dir.is_dir():
                raise InputError(f"{args.run_dir}: no such run folder")
            # Stages meet in files: the analysis runs as its own command, then the gate reads what it wrote.
            # The analysis checks its input before it touches the folder, and once it starts changing the
            # results it removes every verdict on the old ones: bad input leaves the folder as it was.
            analysis = stages.stage("analysis")
            analysed = subprocess.run([*analysis.command_line(args), *(["--", *beam_args] if beam_args else [])])
            if analysed.returncode != EXIT_OK:
                # The analysis said why in its own line; here only make sure no old verdict outlives its results.
                with contextlib.suppress(InputError), open_run(args, new_run_allowed=False) as run:
                    if run.stage("gate") is None and run.stage("analysis") is None:
                        write_unjudged(
                            run, f"the analysis these flags asked for did not finish (exit {analysed.returncode})"
                        )
                if analysed.returncode in (EXIT_BAD_INPUT, EXIT_INTERRUPTED):
                    return analysed.returncode  # the analysis said why, in one line
                raise InputError(f"the analysis ended with exit code {analysed.returncode} (crashed or killed)")
        with open_run(args, new_run_allowed=False) as run:
            if requested:
                _check_the_analysis_is_the_one_asked_for(run, args)
            verdict = gate(run, rules, bless=args.bless)
        print(f"gate: {'PASSED' if verdict.passed else 'FAILED'} ({run.gate_dir / VERDICT_NAME})")
        return EXIT_OK if verdict.passed else EXIT_GATE_FAILED

    return run_cli(work, debug=args.debug)


def _check_the_analysis_is_the_one_asked_for(run, args) -> None:
    """Another process may have re-analysed the folder between the analysis and this gate."""
    from evalsuite import registry

    record = run.require_stage("analysis", "analysis")
    for role in ("baseline", "candidate"):
        asked = getattr(args, role)
        if asked is None or registry.is_reference(asked):
            continue
        analysed = (record.get(role) or {}).get("label")
        if analysed != asked:
            raise InputError(f"{run.path}: the analysis on disk is of {role} {analysed!r}, not {asked!r}; run again")


def history(argv: list[str]) -> int:
    """python -m gates history --registry DIR: the blessed models, newest first."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gates history", description=history.__doc__)
    parser.add_argument("--registry", type=Path, required=True, help="the registry folder")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def work() -> int:
        from gates.bless import history_lines

        for line in history_lines(args.registry):
            print(line)
        return EXIT_OK

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
