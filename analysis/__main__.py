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

from evalsuite.cli import add_analysis_args, command_args, new_parser, open_run
from evalsuite.errors import run_cli
from evalsuite.run.contract import DEFAULT_BASELINE, DEFAULT_CANDIDATE, DEFAULT_SEED


def analysis_config(
    args: argparse.Namespace,
    beam_args: list[str],
    baseline: str,
    candidate: str,
    rules=None,
    fallback=DEFAULT_BASELINE,
    run=None,
):
    """The analysis settings the flags name; `blessed:DIR` resolves to the newest blessed model.

    With `run`, a candidate that is itself the newest blessed model is recognised
    by its weights (see registry.resolve_baseline).
    """
    from analysis.config import AnalysisConfig
    from evalsuite import progress, registry
    from evalsuite.errors import InputError

    seed = getattr(args, "seed", DEFAULT_SEED)
    if not 0 <= seed <= 2**32 - 1:
        raise InputError(f"--seed: must be in 0..{2**32 - 1}, got {seed}")
    for role, name in (("baseline", baseline), ("candidate", candidate)):
        if not name:
            raise InputError(f"--{role}: empty model name")
    note = info = None
    if registry.is_reference(candidate):
        raise InputError("--candidate: a blessed model is a baseline; name the model to judge")
    if registry.is_reference(baseline):
        from analysis.models import resolve_model

        on_empty = rules.on_empty if rules is not None else "rubber-stamp"
        from evalsuite.run.model_identity import weights_fingerprint

        weights = weights_fingerprint(resolve_model(run, candidate, "candidate").path) if run is not None else None
        # The split this run evaluates on, when it evaluates on its own held-out examples.
        own_split = None if run is None or getattr(args, "eval_data", None) else (run.stage("data") or {}).get("split")
        baseline, note, info = registry.resolve_baseline(
            baseline, on_empty, fallback, progress.log, progress.warn, weights, own_split
        )
    return AnalysisConfig(
        baseline_note=note,
        baseline_info=info,
        baseline=baseline,
        candidate=candidate,
        eval_data=getattr(args, "eval_data", None),
        jackknife=args.jackknife,
        beam_args=tuple(beam_args),
        seed=seed,
    )


def run_requested_analysis(run, args: argparse.Namespace, beam_args: list[str], rules):
    """Analyse the models named by --baseline/--candidate (the run's fewest and most epochs unless given); --force recomputes."""
    from analysis.evaluate import analyze

    runs = (run.stage("training") or {}).get("runs") or {}
    # The first seed's models (a recipe's further seeds follow their first seed's pair).
    first_seed = {name: info for name, info in runs.items() if "seed" not in info} if isinstance(runs, dict) else {}
    own = sorted(first_seed, key=lambda name: first_seed[name].get("epochs", 0))
    own_baseline, own_candidate = (own[0], own[-1]) if len(own) >= 2 else (DEFAULT_BASELINE, DEFAULT_CANDIDATE)
    config = analysis_config(
        args,
        beam_args,
        _name(args.baseline, own_baseline),
        _name(args.candidate, own_candidate),
        rules,
        fallback=own_baseline,
        run=run,
    )
    return analyze(run, config, rules, force=args.force)


def _name(given: str | None, default: str) -> str:
    return default if given is None else given


def main(argv: list[str] | None = None) -> int:
    own_args, beam_args = command_args(argv)
    parser = new_parser("python -m analysis", __doc__, new_run_allowed=False)
    add_analysis_args(parser)
    args = parser.parse_args(own_args)

    def work() -> int:
        from evalsuite.rules.settings import load_rules
        from evalsuite.run.contract import SUMMARY_NAME

        rules = load_rules(args.rules)
        with open_run(args, new_run_allowed=False) as run:
            rules.check_judges(run.trained_seeds())
            run_requested_analysis(run, args, beam_args, rules)
            print(f"analysis: {run.analysis_dir / SUMMARY_NAME}")
        return 0

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
