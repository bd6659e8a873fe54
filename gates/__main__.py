"""python -m gates: pass or fail the candidate against the baseline.

Exit codes: 0 the gate passes, 1 the rules say no, 2 bad input or usage.
Writes RUN/gate/verdict.json, junit.xml and summary.md (also appended to
$GITHUB_STEP_SUMMARY when set).

Examples:
    python -m gates --run-dir runs/demo
    python -m gates --run-dir runs/demo --baseline /models/accepted --candidate epochs-6
    python -m gates --run-dir runs/demo --rules strict-gate.toml
"""

from __future__ import annotations

import sys

from analysis.__main__ import add_analysis_args, run_requested_analysis
from evalsuite.cli import command_args, new_parser, open_run
from evalsuite.errors import EXIT_GATE_FAILED, EXIT_OK, run_cli


def main(argv: list[str] | None = None) -> int:
    own_args, beam_args = command_args(argv)
    parser = new_parser("python -m gates", __doc__, new_run_allowed=False)
    add_analysis_args(parser, on_demand=True)
    args = parser.parse_args(own_args)

    def work() -> int:
        from gates.gate import gate
        from gates.rules import load_rules

        rules = load_rules(args.rules)
        with open_run(args, new_run_allowed=False) as run:
            if args.baseline or args.candidate or args.eval_data or args.force:
                run_requested_analysis(run, args, beam_args, rules)
            verdict = gate(run, rules)
        print(f"gate: {'PASSED' if verdict.passed else 'FAILED'} ({run.gate_dir / 'verdict.json'})")
        return EXIT_OK if verdict.passed else EXIT_GATE_FAILED

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
