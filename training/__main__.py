"""python -m training: train the 3- and 6-epoch runs into a run folder.

Example:
    python -m training --run-dir runs/demo --data bundled
"""

from __future__ import annotations

import argparse
import sys

from evalsuite.cli import new_parser, open_run, pin_hash_seed
from evalsuite.errors import run_cli


def add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument(
        "--data",
        default="auto",
        help="auto | keras | bundled | PATH (IDX folder or .npz); auto = keras if reachable, else bundled",
    )
    group.add_argument("--seed", type=int, default=42, help="seed for splits, initialisation and shuffling")
    group.add_argument("--epochs", type=int, nargs="+", default=[3, 6], help="one run per epoch count")
    group.add_argument("--batch-size", type=int, default=32)
    group.add_argument("--histogram-freq", type=int, default=1, help="TensorBoard histograms every N epochs (0: off)")
    group.add_argument(
        "--independent-runs",
        action="store_true",
        help="train each run from scratch instead of snapshotting one trajectory",
    )
    group.add_argument("--train-limit", type=int, default=None, help="stratified subset of training examples")
    group.add_argument("--eval-limit", type=int, default=None, help="stratified subset of evaluation examples")
    group.add_argument(
        "--class-names",
        default=None,
        help="ten comma-separated class names (default: class_names.txt beside the data, a recognised data set, "
        "else 'digit N')",
    )
    group.add_argument(
        "--steps-per-execution",
        type=int,
        default=None,
        help="training steps per call into TensorFlow (default 25; same weights as 1, faster)",
    )


def training_config(args: argparse.Namespace):
    from evalsuite.class_names import parse_names
    from training.model import STEPS_PER_EXECUTION
    from training.train import TrainConfig

    return TrainConfig(
        class_names=tuple(parse_names(args.class_names, "--class-names")) if args.class_names else None,
        steps_per_execution=STEPS_PER_EXECUTION if args.steps_per_execution is None else args.steps_per_execution,
        data=args.data,
        seed=args.seed,
        epochs=tuple(args.epochs),
        batch_size=args.batch_size,
        histogram_freq=args.histogram_freq,
        independent_runs=args.independent_runs,
        train_limit=args.train_limit,
        eval_limit=args.eval_limit,
        verbose=0 if args.quiet else 1,
    )


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        pin_hash_seed()
    parser = new_parser("python -m training", __doc__, new_run_allowed=True)
    add_training_args(parser)
    args = parser.parse_args(argv)

    def work() -> int:
        from training.train import train

        config = training_config(args)
        with open_run(args, new_run_allowed=True) as run:
            train(run, config)
        return 0

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
