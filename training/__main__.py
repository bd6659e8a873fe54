"""python -m training: train the 3- and 6-epoch runs into a run folder.

Example:
    python -m training --run-dir runs/demo --data bundled
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalsuite.cli import new_parser, open_run, pin_hash_seed
from evalsuite.errors import run_cli
from evalsuite.run.contract import DEFAULT_EPOCHS, DEFAULT_SEED


def add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument(
        "--data",
        default="auto",
        help="auto | keras | bundled | PATH: image folders (PATH/train/<class>/*, PATH/test/<class>/* or "
        "PATH/val/<class>/*; or PATH/<class>/*, split by the seed), an .npz (x_train, y_train, x_test, y_test) "
        "or an IDX folder; "
        "auto = keras if reachable, else bundled",
    )
    group.add_argument(
        "--model",
        default="mlp",
        help="mlp (default, the tutorial's MLP) | cnn (a small conv net) | FILE.py:FUNCTION | "
        "package.module:FUNCTION, a function (input_shape, num_classes) -> Keras model",
    )
    group.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="training config TOML: optimizer, learning rate, batch size, features to slice by "
        "(default: ./train.toml when there is one, else built-in); the flags below override it",
    )
    group.add_argument("--optimizer", default=None, help="Keras optimizer for an uncompiled model (default adam)")
    group.add_argument(
        "--learning-rate", type=float, default=None, help="the optimizer's learning rate (default: Keras' own)"
    )
    group.add_argument("--batch-size", type=int, default=None, help="examples per training step (default 32)")
    group.add_argument(
        "--slice-by",
        type=_feature_names,
        default=None,
        metavar="NAME,...",
        help="also slice the evaluation by these per-example features (.npz arrays meta_<name>, or the columns "
        "of test.csv / val.csv beside image folders)",
    )
    group.add_argument(
        "--image-size",
        default=None,
        metavar="HxW",
        help="resize every image to HEIGHTxWIDTH (bilinear, PIL); without it all images must have one size",
    )
    group.add_argument(
        "--channels", type=int, default=None, choices=(1, 3), help="1 grey, 3 colour (default: from the data)"
    )
    group.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed for splits, initialisation and shuffling (default {DEFAULT_SEED})",
    )
    group.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train the recipe from N seeds (--seed, --seed + 1, ...) on one data split and judge the recipe "
        "across them, with the churn retraining alone causes (default 1: one seed)",
    )
    group.add_argument(
        "--epochs",
        type=_epoch_counts,
        nargs="+",
        default=[list(DEFAULT_EPOCHS)],
        metavar="A,B",
        help="the epoch counts of the models (default 3,6; '3 6' works too): the fewest is the baseline, "
        "the most the candidate",
    )
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
        help="comma-separated class names, one per class (default: class_names.txt beside the data, the class "
        "folders' names, a recognised data set, else 'digit N')",
    )
    group.add_argument(
        "--steps-per-execution",
        type=int,
        default=None,
        help="training steps per call into TensorFlow (default 25; same weights as 1, faster)",
    )


def _epoch_counts(text: str) -> list[int]:
    """'3,6' or '6' (several values, as '3 6', are joined by argparse)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected epoch counts such as 3,6, got {text!r}") from None


def _feature_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def training_config(args: argparse.Namespace):
    from evalsuite.data.class_names import parse_names
    from evalsuite.data.spec import parse_image_size
    from training import settings_file
    from training.model import STEPS_PER_EXECUTION
    from training.train import TrainConfig

    file_values, source = settings_file.load(args.config)
    flags = {
        "optimizer": args.optimizer,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "features": args.slice_by,
    }
    values, origins = settings_file.resolve(flags, file_values)
    return TrainConfig(
        model=args.model,
        optimizer=values["optimizer"],
        learning_rate=values["learning_rate"],
        slice_features=tuple(values["features"]),
        config_file=source,
        config_origins=tuple(sorted(origins.items())),
        image_size=parse_image_size(args.image_size),
        channels=args.channels,
        class_names=tuple(parse_names(args.class_names, "--class-names")) if args.class_names else None,
        steps_per_execution=STEPS_PER_EXECUTION if args.steps_per_execution is None else args.steps_per_execution,
        data=args.data,
        seed=args.seed,
        seeds=args.seeds,
        epochs=tuple(count for group in args.epochs for count in group),
        batch_size=values["batch_size"],
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
