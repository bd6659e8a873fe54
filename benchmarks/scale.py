"""python -m benchmarks scale: the analysis, gate and report on large evaluation sets, side by side in one run.

Trains one run on the bundled digits, makes evaluation sets of 10,000 and
100,000 examples (and 1,000,000 with --million) from its 1,000 evaluation
images, each shifted by a seeded -2..2 pixels, and runs `python -m analysis`,
`python -m gates` and `python -m reports` on each as whole processes. Prints
seconds per stage, the marginal cost per example (the difference between two
sizes, so start-up and imports cancel), peak memory, and the analysis on N
workers (threads, then processes) against one, the analysis against a raw floor
(both models called in batches, counted in numpy) and against TFMA's least
pipeline (`tfma.run_model_analysis` with only ExampleCount), and with discovery
against without, at the largest size (`--sizes`). Then 1,000 classes end to end
(benchmarks/many_classes.py: training, analysis, gate and report, each stage's
seconds and peak memory).

Examples:
    python -m benchmarks scale
    python -m benchmarks scale --million --json scale.json
    python -m benchmarks scale --sizes 10000,300000 --classes 0   # the analysis against its floor at 300,000
    python -m benchmarks scale --classes-only       # only the 1,000 classes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = (10_000, 100_000)
MILLION = 1_000_000
ONE_PROCESS = ("--direct_num_workers=1",)  # the size rows measure one process (larger sets get workers by default)
CHUNK = 50_000  # examples generated and written at a time: the generator's memory stays bounded too
TARGETS = {
    "marginal ms per example": 0.3,
    "analysis with discovery / without": 1.25,
    "analysis process / floor process": 1.5,  # discovery off: the floor finds no slices
    "peak memory, largest / smallest": 1.3,
    "report seconds, default run": 2.0,
    "peak MB, largest stage": 4096,  # at 1,000 classes
}


def run_process(module: str, *args: str, env: dict | None = None) -> dict:
    """`python -m MODULE ARGS` in its own process, through benchmarks.peak: wall seconds and peak memory."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.peak", module, *args], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - started
    try:
        measured = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        measured = {"exit": done.returncode}
    if measured.get("exit") not in (0, 1):
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise SystemExit(f"benchmark: python -m {module} failed ({tail})")
    return {"seconds": seconds, "peak_mb": measured.get("peak_mb")}


def make_eval_set(source_pattern: str, spec, size: int, folder: Path, seed: int = 0) -> None:
    """`size` examples: the run's evaluation images in turn, each shifted by a seeded -2..2 pixels."""
    from evalsuite.data.examples import read_examples, write_examples

    images, labels, _, _ = read_examples(source_pattern, spec)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, size, CHUNK):
        count = min(CHUNK, size - start)
        picks = np.arange(start, start + count) % len(labels)
        shifts = rng.integers(-2, 3, (count, 2))
        shifted = np.stack([np.roll(images[i], tuple(shift), axis=(0, 1)) for i, shift in zip(picks, shifts)])
        staging = folder / f".chunk-{start}"
        for path in write_examples(staging, shifted, labels[picks]):
            path.rename(folder / f"c{start // CHUNK:04d}-{path.name}")
        staging.rmdir()


def bench(sizes: tuple[int, ...], workers: int, log) -> list[dict]:
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.folder import RunDir

    rows = []
    with tempfile.TemporaryDirectory(prefix="evalsuite-scale-") as scratch:
        root = Path(scratch)
        run_dir = root / "run"
        log("scale: training the run on the bundled digits ...")
        run_process("training", "--run-dir", str(run_dir), "--data", "bundled", "--histogram-freq", "0", "-q")
        log("scale: the report of the default run ...")
        run_process("analysis", "--run-dir", str(run_dir), "-q")
        run_process("gates", "--run-dir", str(run_dir), "-q")
        report = run_process("reports", "--run-dir", str(run_dir), "-q")
        rows.append({"measure": "report seconds, default run", "value": report["seconds"]})
        data = RunDir(run_dir).stage("data")
        spec = recorded_spec(data, "manifest")
        source = str(run_dir / data["pattern"])
        measured = {}
        for size in sizes:
            folder = root / f"eval-{size}"
            log(f"scale: {size:,} examples: writing them ...")
            make_eval_set(source, spec, size, folder)
            log(f"scale: {size:,} examples: analysis, gate, report ...")
            stages = {
                "analysis": run_process(
                    "analysis", "--run-dir", str(run_dir), "--eval-data", str(folder), "-q", "--", *ONE_PROCESS
                ),
                "gate": run_process("gates", "--run-dir", str(run_dir), "-q"),
                "report": run_process("reports", "--run-dir", str(run_dir), "-q"),
            }
            report_bytes = sum(f.stat().st_size for f in (run_dir / "report").rglob("*") if f.is_file())
            measured[size] = stages
            for stage, result in stages.items():
                rows.append({"measure": f"{stage} seconds", "size": size, "value": result["seconds"]})
            rows.append({"measure": "analysis peak MB", "size": size, "value": stages["analysis"]["peak_mb"]})
            rows.append({"measure": "report MB", "size": size, "value": report_bytes / 1e6})
        for small, large in zip(sizes, sizes[1:]):
            extra = measured[large]["analysis"]["seconds"] - measured[small]["analysis"]["seconds"]
            rows.append(
                {
                    "measure": "marginal ms per example",
                    "size": f"{small:,}..{large:,}",
                    "value": 1000 * extra / (large - small),
                }
            )
        largest = sizes[-1]
        if len(sizes) > 1:
            log(f"scale: {largest:,} examples: the analysis without discovered slices ...")
            plain = run_process(
                "analysis", "--run-dir", str(run_dir), "--eval-data", str(root / f"eval-{largest}"), "--force", "-q",
                "--", *ONE_PROCESS, env={"EVALSUITE_DISCOVERY": "off"},
            )
            rows.append({"measure": "analysis seconds without discovery", "size": largest, "value": plain["seconds"]})

            def task(name: str) -> dict:  # a floor, as a whole process on the largest set
                arguments = {"run_dir": str(run_dir), "eval_data": str(root / f"eval-{largest}")}
                return run_process("benchmarks.tasks", name, json.dumps(arguments))

            def ratio(measure: str, top: dict, bottom: dict) -> None:
                rows.append({"measure": measure, "size": largest, "value": top["seconds"] / bottom["seconds"]})

            log(f"scale: {largest:,} examples: the raw floor (both models, batched, counted in numpy) ...")
            floor = task("raw_floor")
            rows.append({"measure": "raw-floor process seconds", "size": largest, "value": floor["seconds"]})
            ratio("analysis process / floor process", plain, floor)
            log(f"scale: {largest:,} examples: TFMA's least pipeline (run_model_analysis, ExampleCount only) ...")
            least = task("tfma_floor")
            rows.append({"measure": "TFMA least pipeline process seconds", "size": largest, "value": least["seconds"]})
            ratio("TFMA least pipeline / floor process", least, floor)
            ratio("analysis process / TFMA least pipeline", plain, least)
            ratio("analysis with discovery / without", measured[largest]["analysis"], plain)
        peaks = [measured[size]["analysis"]["peak_mb"] for size in sizes]
        rows.append({"measure": "peak memory, largest / smallest", "value": peaks[-1] / peaks[0]})
        if workers > 1 and len(sizes) > 1:
            one = measured[largest]["analysis"]["seconds"]
            folder = root / f"eval-{largest}"
            for mode in ("multi_threading", "multi_processing"):
                log(f"scale: {largest:,} examples on {workers} {mode} workers ...")
                beam = [f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"]
                many = run_process(
                    "analysis", "--run-dir", str(run_dir), "--eval-data", str(folder), "--force", "-q", "--", *beam
                )
                rows.append({"measure": f"analysis seconds, {workers} {mode}", "size": largest, "value": many["seconds"]})
                rows.append({"measure": f"speedup, {workers} {mode}", "size": largest, "value": one / many["seconds"]})
    return rows


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are whole numbers separated by commas, got {text!r}") from None
    if not sizes or min(sizes) < 1000:
        raise argparse.ArgumentTypeError(f"each size is at least 1,000 examples, got {text!r}")
    return sizes


def format_table(rows: list[dict]) -> str:
    lines = [f"{'measure':<40} {'size':>18} {'value':>10}  target"]
    for row in rows:
        target = TARGETS.get(row["measure"])
        verdict = "" if target is None else f"<= {target:g} {'met' if row['value'] <= target else 'MISSED'}"
        size = row.get("size", "")
        size = f"{size:,}" if isinstance(size, int) else size
        lines.append(f"{row['measure']:<40} {size:>18} {row['value']:>10.3f}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--million", action="store_true", help="also 1,000,000 examples (minutes more)")
    parser.add_argument(
        "--sizes", type=_sizes, default=SIZES,
        help="evaluation set sizes, comma-separated (default 10000,100000); the comparisons run at the largest",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="workers for the speedup row")
    parser.add_argument("--classes", type=int, default=1000, help="classes of the end-to-end case (0: skip it)")
    parser.add_argument("--classes-only", action="store_true", help="only the end-to-end case of --classes classes")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the evaluation sets are written with TensorFlow, quietly
    log = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    if args.classes and not 2 <= args.classes <= 1000:
        parser.error(f"--classes: 2 to 1,000 classes (0: skip), got {args.classes}")
    sizes = tuple(sorted(set(args.sizes + ((MILLION,) if args.million else ()))))
    rows = [] if args.classes_only else bench(sizes, args.workers, log)
    if args.classes:
        from benchmarks.many_classes import bench as bench_many_classes

        with tempfile.TemporaryDirectory(prefix="evalsuite-classes-") as scratch:
            rows += bench_many_classes(args.classes, Path(scratch), run_process, log)
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0
