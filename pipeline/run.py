"""evalsuite: the whole pipeline in one process - train, analyse, gate, report.

Running every stage in one process imports TensorFlow and TFMA once. Stages
still talk only through the run folder, and unchanged stages are reused.

Exit codes: 0 the gate passes, 1 the gate says no, 2 bad input or usage.

Examples:
    evalsuite                                   # new dated run under runs/
    evalsuite --run-dir runs/demo --data bundled
    evalsuite --run-dir runs/demo --force       # recompute everything
    evalsuite --baseline blessed:registry --bless registry   # against the last accepted model; bless on pass
    evalsuite --run-dir runs/demo -- --direct_num_workers=2 --direct_running_mode=multi_processing
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from evalsuite import progress
from evalsuite.cli import check_registry_folder, command_args, new_parser, open_run
from evalsuite.errors import EXIT_GATE_FAILED, EXIT_OK, run_cli
from evalsuite.run import stages


def build_parser() -> argparse.ArgumentParser:
    """The `evalsuite` command's flags: the training stage's, the analysis' rules and intervals, and its own."""
    from evalsuite.cli import add_analysis_args, add_bless_arg
    from training.__main__ import add_training_args

    parser = new_parser("evalsuite", __doc__, new_run_allowed=True)
    add_training_args(parser)
    add_analysis_args(parser, models=False)
    parser.add_argument("--force", action="store_true", help="recompute every stage, reusing nothing")
    parser.add_argument(
        "--baseline",
        default=None,
        help="what the 6-epoch model must beat: this run's 3-epoch model (default), a SavedModel path, or "
        "blessed:DIR, the newest model blessed into the registry DIR",
    )
    add_bless_arg(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline import supervise

    if argv is None and not supervise.is_child():
        # A real command line: flags are checked here (--help, usage errors), the work runs in a child.
        args = build_parser().parse_args(command_args([*sys.argv[1:]])[0])
        return run_cli(lambda: supervise.run_supervised(args.model), debug=args.debug)
    own_args, beam_args = command_args(argv)
    from analysis.__main__ import analysis_config
    from training.__main__ import training_config

    args = build_parser().parse_args(own_args)
    verdict_file: list = []

    def work() -> int:
        from evalsuite.rules.settings import load_rules
        from evalsuite.run.contract import run_name

        # Each stage's work, as its declaration names it; they still meet only in the run folder.
        train, analyze, gate, build_report = (
            stages.stage(name).function() for name in ("training", "analysis", "gate", "report")
        )

        started = time.perf_counter()
        config = training_config(args)
        rules = load_rules(args.rules)
        check_models_differ(config.epochs, args.baseline, rules.on_empty)
        rules.check_judges(config.seeds)
        check_registry_folder(args.bless, "--bless")
        new_parents = new_run_parents(args.run_dir)
        with open_run(args, new_run_allowed=True) as run:
            try:
                trained = train(run, config, force=args.force)
                # Recorded once the input is known good: bad input leaves the run folder untouched.
                run.update_manifest(environment=environment(), command=["evalsuite", *sys.argv[1:]])
                own_baseline, candidate = run_name(min(config.epochs)), run_name(max(config.epochs))
                settings = analysis_config(
                    args, beam_args, args.baseline or own_baseline, candidate, rules, fallback=own_baseline, run=run
                )
                analysis = analyze(run, settings, rules)
                verdict = gate(run, rules, bless=args.bless)
                report = build_report(run)
                seconds = time.perf_counter() - started
                run.update_manifest(pipeline_seconds=round(seconds, 3))
                reused = [name for name, result in (("training", trained), ("analysis", analysis)) if result.reused]
                progress.log(f"pipeline: done in {seconds:.1f}s" + (f" (reused {', '.join(reused)})" if reused else ""))
                print_locations(run, report)
            except BaseException:
                if new_parents is not None and not _has_finished_stage(run):
                    # Bad input on a folder this command created: leave no empty run behind.
                    run.release()
                    remove_new_run(run.path, new_parents)
                    print(f"run folder: {run.path} (removed: nothing in it was finished)", file=sys.stderr)
                else:
                    print(f"run folder: {run.path}", file=sys.stderr)
                raise
        print(f"gate: {'PASSED' if verdict.passed else 'FAILED'} ({run.verdict_path})")
        verdict_file.append(run.verdict_path)
        return EXIT_OK if verdict.passed else EXIT_GATE_FAILED

    code = run_cli(work, debug=args.debug)
    supervise.write_receipt(code, verdict_file[0] if verdict_file else None)
    return code


def check_models_differ(epochs: tuple[int, ...], baseline: str | None, on_empty: str = "rubber-stamp") -> None:
    """A model judged against itself says nothing: a usage error, before anything is written."""
    from evalsuite import registry
    from evalsuite.errors import InputError
    from evalsuite.run.contract import run_name

    candidate = run_name(max(epochs))
    if baseline is None and len(epochs) < 2:
        raise InputError(
            f"--epochs {epochs[0]}: one epoch count trains one model with nothing to judge it against; "
            "give two (--epochs 3,6) or a --baseline"
        )
    if registry.is_reference(baseline) and len(epochs) < 2 and on_empty == "rubber-stamp":
        folder = registry.folder_of(baseline)
        if not folder.is_dir() or registry.newest(folder) is None:
            raise InputError(
                f"--baseline {baseline}: the registry holds no blessing yet, and with one epoch count the run has "
                "no model of its own to stand in; give two epoch counts (--epochs 3,6)"
            )
    if baseline == candidate:
        raise InputError(f"--baseline {baseline}: that is the candidate itself; name another model")


def new_run_parents(run_dir) -> list | None:
    """None when the run folder exists already; else the folders above it this command creates, innermost first."""
    from pathlib import Path

    path = Path(run_dir) if run_dir is not None else Path("runs") / "new"
    if run_dir is not None and (path.exists() or path.is_symlink()):
        return None
    created, parent = [], path.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    return created


def remove_new_run(run_path, parents: list) -> None:
    """Remove a run folder this command created, and the empty folders it created above it."""
    import shutil

    shutil.rmtree(run_path, ignore_errors=True)
    for folder in parents:
        try:
            folder.rmdir()
        except OSError:
            break


def environment() -> dict:
    """Versions of what ran, read from package metadata (no heavy imports)."""
    from importlib.metadata import version

    packages = (
        "tensorflow",
        "keras",
        "tensorboard",
        "tensorflow-model-analysis",
        "apache-beam",
        "numpy",
        "scipy",
        "mlxtend",
    )
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{name: version(name) for name in packages},
    }


def _has_finished_stage(run) -> bool:
    try:
        return bool(run.read_manifest()["stages"])
    except Exception:  # noqa: BLE001 - an unreadable manifest is not ours to remove
        return True


def print_locations(run, report) -> None:
    progress.log("where everything is:")
    places = [("manifest", run.manifest_path)]
    places += [(label, run.path / path) for stage in stages.STAGES for label, path in stage.writes]
    for label, path in places:
        progress.log(f"  {label:17} {path}")
    progress.log(f"  analysts:         python -m reports view --run-dir {run.path}")
    progress.log(f"                    (or tensorboard --logdir {run.logs_root})")


if __name__ == "__main__":
    sys.exit(main())
