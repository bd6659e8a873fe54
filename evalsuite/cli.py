"""Flags every stage's command shares, and how they become a locked run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from evalsuite import progress
from evalsuite.errors import InputError
from evalsuite.run.contract import DEFAULT_SEED
from evalsuite.run.folder import LOCK_NAME, MANIFEST_NAME, RunDir, new_run_path


def new_parser(prog: str, doc: str | None, *, new_run_allowed: bool) -> argparse.ArgumentParser:
    """A command's parser: its docstring as --help (examples kept as written) and the shared flags."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, new_run_allowed=new_run_allowed)
    return parser


def add_common_args(parser: argparse.ArgumentParser, *, new_run_allowed: bool) -> None:
    default = "a new dated folder under runs/" if new_run_allowed else "required"
    parser.add_argument("--run-dir", type=Path, default=None, help=f"run folder ({default})")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings, errors and the result")
    parser.add_argument("-v", "--verbose", action="store_true", help="let the libraries' own log lines through")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors (implies --verbose)")


def add_analysis_args(parser: argparse.ArgumentParser, *, models: bool = True, on_demand: bool = False) -> None:
    """Flags for what to analyse; `on_demand`: the models are analysed only when named."""
    group = parser.add_argument_group("analysis")
    if models:
        for flag, which in (("--baseline", "fewest"), ("--candidate", "most")):
            when = (
                "; given, the models are (re)analysed first"
                if on_demand
                else f" (default: the run's model with the {which} epochs, epochs-{3 if which == 'fewest' else 6})"
            )
            extra = "; blessed:DIR is the newest model in a registry" if flag == "--baseline" else ""
            group.add_argument(flag, default=None, help=f"run model name, SavedModel path or .keras file{extra}{when}")
        group.add_argument(
            "--eval-data",
            default=None,
            help="other evaluation data, made to fit the run's data spec: image folders (test/ or val/), IDX folder, .npz, "
            "or TFRecord of tf.Example (file, folder or glob)",
        )
        group.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"seed for the optional jackknife's buckets (default {DEFAULT_SEED})",
        )
        group.add_argument("--force", action="store_true", help="recompute even when nothing changed")
    group.add_argument("--rules", type=Path, default=None, help="gate rules TOML (default: ./gate.toml, else built-in)")
    group.add_argument(
        "--jackknife",
        action="store_true",
        help="also compute TFMA's jackknife intervals of each model's accuracy (slower; the delta's "
        "paired intervals are always computed)",
    )


def add_bless_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bless",
        type=Path,
        default=None,
        metavar="DIR",
        help="when the gate passes, add the candidate to registry DIR",
    )


def check_registry_folder(path: Path | None, flag: str) -> None:
    """A registry is a folder (or one still to be made): checked before the run folder is touched."""
    if path is None:
        return
    if not str(path).strip() or path == Path("."):
        raise InputError(f"{flag} {str(path)!r}: name the registry folder (an unset variable makes it the working folder)")
    if (path.exists() or path.is_symlink()) and not path.is_dir():
        raise InputError(f"{flag} {path}: not a folder; a registry is a folder of blessed models")


def open_run(args: argparse.Namespace, *, new_run_allowed: bool) -> RunDir:
    """Lock the run folder named by --run-dir (or a new dated one) and say where it is."""
    progress.set_quiet(args.quiet)
    if args.run_dir is None:
        if not new_run_allowed:
            raise InputError("--run-dir is required")
        path = new_run_path()
    else:
        path = args.run_dir
        if not str(path).strip() or path == Path("."):
            # An unset variable in a workflow (--run-dir "") must not make the working folder a run.
            raise InputError(f"--run-dir {str(path)!r}: name a run folder (an empty or new folder, or an earlier run)")
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: --run-dir is a file, not a folder")
        if not new_run_allowed and not path.is_dir():
            raise InputError(f"{path}: no such run folder")
    refuse_foreign_folder(path)
    run = RunDir(path).acquire()  # its lock file lives in the run folder itself, never in a stage folder
    try:
        refuse_foreign_folder(path)  # again under the lock: the first look was before anyone else could wait
        refuse_linked_folders(run)  # under the lock: nobody swaps a folder for a link meanwhile
        run.read_manifest()  # a corrupt or foreign manifest stops the run before anything is written
        run.claim()
    except BaseException:
        run.release()
        raise
    progress.log(f"run folder: {run.path}")
    return run


def refuse_foreign_folder(path: Path) -> None:
    """A run folder is the product's only when it holds the product's manifest, or is empty or new.

    The stages replace their own folders (data/, models/, report/, ...) whole: in a
    folder someone else keeps files in, that would delete them.
    """
    if not path.is_dir() or (path / MANIFEST_NAME).is_file():
        return
    others = sorted(entry.name for entry in path.iterdir() if entry.name != LOCK_NAME)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise InputError(
            f"{path}: not a run folder (it holds {shown} but no {MANIFEST_NAME}); "
            "name an empty or new folder, or an earlier run's"
        )


def refuse_linked_folders(run: RunDir) -> None:
    """A run's own folders must be real folders: writing or cleaning through a link could reach anything."""
    for folder in (run.data_dir, run.models_dir, run.logs_root, run.analysis_dir, run.gate_dir, run.report_dir):
        if folder.is_symlink():
            raise InputError(f"{folder}: a symlink where the run keeps its own files; replace it with a folder")
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder}: not a folder; the run keeps its own files there")


def command_args(argv: list[str] | None) -> tuple[list[str], list[str]]:
    """The command's own arguments, and Beam's: everything after a bare `--`, untouched.

    A real command line (argv None) first pins the hash seed (see pin_hash_seed).
    """
    import sys

    if argv is None:
        pin_hash_seed()
        argv = sys.argv[1:]
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1 :]
    return argv, []


def pin_hash_seed() -> None:
    """Re-run this command with PYTHONHASHSEED=0 unless it is already pinned.

    Beam orders some of TFMA's work by Python's per-process string hashes, and the
    jackknife's buckets follow that order: without a fixed hash seed the
    confidence intervals change from run to run. Called only by real command
    lines, before TensorFlow is imported.
    """
    import os
    import sys

    if os.environ.get("PYTHONHASHSEED") == "0":
        return
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
