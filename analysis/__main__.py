"""python -m analysis: run TFMA over a run's finished SavedModels.

Examples:
    python -m analysis --run-dir runs/demo
    python -m analysis --run-dir runs/demo --eval-data /usr/share/datasets/fashion-mnist
    python -m analysis --run-dir runs/demo -- --direct_num_workers=2 --direct_running_mode=multi_processing

Arguments after `--` are Apache Beam pipeline options (--runner=FlinkRunner ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalsuite.cli import command_args, new_parser, open_run
from evalsuite.errors import run_cli


def add_analysis_args(parser: argparse.ArgumentParser, *, models: bool = True, on_demand: bool = False) -> None:
    """Flags for what to analyse; `on_demand`: the models are analysed only when named."""
    group = parser.add_argument_group("analysis")
    if models:
        for flag, default in (("--baseline", "epochs-3"), ("--candidate", "epochs-6")):
            when = "; given, the models are (re)analysed first" if on_demand else f" (default: {default})"
            group.add_argument(
                flag, default=None if on_demand else default, help=f"run model name or SavedModel path{when}"
            )
        group.add_argument(
            "--eval-data",
            default=None,
            help="other evaluation data: IDX folder, .npz, or TFRecord of tf.Example (file, folder or glob)",
        )
        group.add_argument("--seed", type=int, default=42, help="seed for the jackknife's buckets (default 42)")
        group.add_argument("--force", action="store_true", help="recompute even when nothing changed")
    group.add_argument("--rules", type=Path, default=None, help="gate rules TOML (default: ./gate.toml, else built-in)")
    group.add_argument("--no-intervals", action="store_true", help="skip jackknife confidence intervals (faster)")


def analysis_config(args: argparse.Namespace, beam_args: list[str], baseline: str, candidate: str):
    from analysis.evaluate import AnalysisConfig

    return AnalysisConfig(
        baseline=baseline,
        candidate=candidate,
        eval_data=getattr(args, "eval_data", None),
        confidence_intervals=not args.no_intervals,
        beam_args=tuple(beam_args),
        seed=args.seed,
    )


def run_requested_analysis(run, args: argparse.Namespace, beam_args: list[str], rules):
    """Analyse the models named by --baseline/--candidate (epochs-3/epochs-6 unless given); --force recomputes."""
    from analysis.evaluate import analyze

    if args.force:
        run.forget_stage("analysis")
    config = analysis_config(args, beam_args, args.baseline or "epochs-3", args.candidate or "epochs-6")
    return analyze(run, config, rules)


def main(argv: list[str] | None = None) -> int:
    own_args, beam_args = command_args(argv)
    parser = new_parser("python -m analysis", __doc__, new_run_allowed=False)
    add_analysis_args(parser)
    args = parser.parse_args(own_args)

    def work() -> int:
        from gates.rules import load_rules

        rules = load_rules(args.rules)
        with open_run(args, new_run_allowed=False) as run:
            run_requested_analysis(run, args, beam_args, rules)
            print(f"analysis: {run.analysis_dir / 'summary.json'}")
        return 0

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
