"""python -m benchmarks: each stage against its raw floor, measured side by side in one run.

Prints a table of seconds, peak memory and ratios (the targets are ratios, not
absolute times, because machines differ), and writes the rows as JSON.

Examples:
    python -m benchmarks                                    # bundled digits
    python -m benchmarks --data bundled --data /usr/share/datasets/fashion-mnist --json bench.json
    python -m benchmarks calibration                        # how often the rules fail healthy runs
    python -m benchmarks scale                              # 10,000 and 100,000 evaluation examples; 1,000 classes
    python -m benchmarks discovery --seeds 20             # discovered slices: false alarms and planted finds
    python -m benchmarks engines                            # the analysis on the DirectRunner and on Prism
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

RECIPE_SEEDS = 5  # what a recipe run (--seeds N) is measured at, against --seeds 1
TARGETS = {
    "training stage / tutorial fit": 0.70,
    "with intervals / without": 1.15,
    "analysis process / floor process": 2.0,
    "gate warm / gate cold": 0.10,
    "with discovery / without": 1.15,
}


def measure(task: str, **arguments) -> dict:
    """Run one task in its own process; wall time includes start-up and imports."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.tasks", task, json.dumps(arguments)],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-3:]
        raise SystemExit(f"benchmark task {task} failed: {' | '.join(tail)}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def measure_command(module: str, *args: str) -> dict:
    """A whole command as a user waits for it: process wall time, imports included."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)
    if completed.returncode not in (0, 1):
        tail = completed.stderr.strip().splitlines()[-3:]
        raise SystemExit(f"benchmark command {module} failed: {' | '.join(tail)}")
    return {"seconds": time.perf_counter() - started}


def bench_dataset(data: str, workdir: Path, repeat: int, log) -> list[dict]:
    def best(task, **arguments):
        runs = [measure(task, **arguments) for _ in range(repeat)]
        return min(runs, key=lambda r: r["seconds"])

    def best_command(*args):
        return min((measure_command(*args) for _ in range(repeat)), key=lambda r: r["seconds"])

    label = Path(data).name if data not in ("bundled", "keras", "auto") else data
    log(f"[{label}] the tutorial's model.fit, 6 epochs ...")
    bare = best("bare_fit", data=data, logdir=str(workdir / "bare-logs"))
    log(f"[{label}] training stage ...")
    stage = best("train_stage", data=data, run_dir=str(workdir / "run"))
    log(f"[{label}] training stage with --model cnn ...")
    cnn_stage = best("train_stage", data=data, run_dir=str(workdir / "run-cnn"), model="cnn")
    log(f"[{label}] raw floor ...")
    floor = best("raw_floor", run_dir=str(workdir / "run"))
    log(f"[{label}] analysis with and without intervals ...")
    with_ci = best("analysis_stage", run_dir=str(workdir / "run"), intervals=True)
    without_ci = best("analysis_stage", run_dir=str(workdir / "run"), intervals=False)
    without_discovery = best("analysis_stage", run_dir=str(workdir / "run"), intervals=True, discovery=False)
    log(f"[{label}] analysis process and raw-floor process ...")
    floor_process = best_command("benchmarks.tasks", "raw_floor", json.dumps({"run_dir": str(workdir / "run")}))
    analysis_process = best_command("analysis", "--run-dir", str(workdir / "run"), "--force", "-q")
    tfma_floor_process = best_command("benchmarks.tasks", "tfma_floor", json.dumps({"run_dir": str(workdir / "run")}))
    log(f"[{label}] the recipe: training and analysis with --seeds {RECIPE_SEEDS} ...")
    recipe_stage = best("train_stage", data=data, run_dir=str(workdir / "run-recipe"), seeds=RECIPE_SEEDS)
    recipe_analysis = best("analysis_stage", run_dir=str(workdir / "run-recipe"), intervals=True)
    per_seed_analysis = best("analysis_per_seed", run_dir=str(workdir / "run-recipe"))
    log(f"[{label}] gate, cold then warm ...")
    cold = measure_command("pipeline", "--run-dir", str(workdir / "gate"), "--data", data, "-q")
    warm = measure_command("pipeline", "--run-dir", str(workdir / "gate"), "--data", data, "-q")

    per_thousand = with_ci["eval_examples"] / 1000
    return [
        _row(label, "tutorial model.fit, 6 epochs + TensorBoard", bare),
        _row(label, "training stage (3 + 6 from one run)", stage, bare, "training stage / tutorial fit"),
        _row(label, "training stage, --model cnn (ratio to the MLP's)", cnn_stage, stage, "cnn stage / mlp stage"),
        _row(label, "raw floor: both signatures + numpy", floor),
        _row(label, "analysis: TFMA per-model metrics only", without_ci),
        _row(label, "analysis stage: + paired counts, intervals", with_ci, without_ci, "with intervals / without"),
        _row(label, "analysis stage without discovered slices", without_discovery),
        _row(label, "analysis stage: + discovered slices", with_ci, without_discovery, "with discovery / without"),
        _row(label, "raw-floor process (imports included)", floor_process),
        _row(label, "python -m analysis process", analysis_process, floor_process, "analysis process / floor process"),
        _row(label, "TFMA floor process: ExampleCount only", tfma_floor_process, floor_process, "TFMA floor / floor"),
        _row(label, f"training stage, --seeds {RECIPE_SEEDS}", recipe_stage, stage, "seeds N / seeds 1"),
        _row(
            label,
            f"analysis stage, --seeds {RECIPE_SEEDS}: one pipeline",
            recipe_analysis,
            with_ci,
            "seeds N / seeds 1",
        ),
        _row(
            label,
            f"analysis, {RECIPE_SEEDS} passes, one per seed",
            per_seed_analysis,
            recipe_analysis,
            "passes / pipeline",
        ),
        _row(label, "gate pipeline, cold (process wall)", cold),
        _row(label, "gate pipeline, warm (process wall)", warm, cold, "gate warm / gate cold"),
        {
            "dataset": label,
            "measure": "analysis s per 1,000 eval examples",
            "seconds": with_ci["seconds"] / per_thousand,
            "eval_examples": with_ci["eval_examples"],
        },
    ]


def _row(dataset, name, result, floor=None, ratio_name=None) -> dict:
    row = {"dataset": dataset, "measure": name, "seconds": result["seconds"], "peak_rss_mb": result.get("peak_rss_mb")}
    if floor is not None:
        row["ratio"] = result["seconds"] / floor["seconds"]
        row["ratio_name"] = ratio_name
        row["target"] = TARGETS.get(ratio_name)
    return row


def format_table(rows: list[dict]) -> str:
    lines = [f"{'dataset':<14} {'measure':<47} {'seconds':>8} {'peak MB':>8} {'ratio':>7}  target"]
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        target = ""
        if row.get("target") is not None:
            met = row["ratio"] <= row["target"]
            target = f"<= {row['target']:.2f} {'met' if met else 'MISSED'}"
        peak = f"{row['peak_rss_mb']:.0f}" if row.get("peak_rss_mb") else ""
        seconds = f"{row['seconds']:.2f}"
        lines.append(f"{row['dataset']:<14} {row['measure']:<47} {seconds:>8} {peak:>8} {ratio:>7}  {target}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["calibration"]:
        from benchmarks.calibration import main as calibration_main

        return calibration_main(argv[1:])
    if argv[:1] == ["discovery"]:
        from benchmarks.discovery import main as discovery_main

        return discovery_main(argv[1:])
    if argv[:1] == ["engines"]:
        from benchmarks.engines import main as engines_main

        return engines_main(argv[1:])
    if argv[:1] == ["scale"]:
        from benchmarks.scale import main as scale_main

        return scale_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        action="append",
        default=None,
        help="data to measure on (repeatable; default: bundled). A full-size set shows cost growth",
    )
    parser.add_argument("--repeat", type=int, default=1, help="repeat the floors and analyses, keep the fastest")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    log = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    rows = []
    with tempfile.TemporaryDirectory(prefix="evalsuite-bench-") as scratch:
        for index, data in enumerate(args.data or ["bundled"]):
            rows += bench_dataset(data, Path(scratch) / str(index), args.repeat, log)
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
