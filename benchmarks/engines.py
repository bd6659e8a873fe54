"""python -m benchmarks engines: the analysis on each Beam engine that runs here, side by side in one run.

Trains one run on the bundled digits, writes an evaluation set of --examples
examples (benchmarks/scale.py's shifted copies of its evaluation images), and
runs `python -m analysis --eval-data SET` on it as a whole process: on the
DirectRunner in one process, on 2 multi-processing workers, and on Prism
(engines/prism.sh builds it). Prints seconds, the speedup against the one-process
DirectRunner, and the peak memory of each process tree (the analysis process or
any process it waited for: Prism and the workers). Flink and Spark cannot run
here (their Beam job servers cannot be had; see docs/scale.md "Run on a cluster").

Examples:
    python -m benchmarks engines                       # 100,000 examples
    python -m benchmarks engines --examples 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.scale import make_eval_set, run_process

REPO = Path(__file__).resolve().parents[1]


def prism_binary(log) -> Path:
    """Build (once) and locate the Prism binary for the installed Beam."""
    log("engines: Prism binary (engines/prism.sh build; a few minutes the first time) ...")
    done = subprocess.run(
        ["bash", str(REPO / "engines" / "prism.sh"), "build"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark: engines/prism.sh build failed ({done.stderr.strip()[-300:]})")
    return Path(done.stdout.strip().splitlines()[-1])


def bench(examples: int, log) -> list[dict]:
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.folder import RunDir

    prism = prism_binary(log)
    engines = {
        "DirectRunner, 1 process": ["--direct_num_workers=1"],
        "DirectRunner, 2 workers": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        "Prism (LOOPBACK)": ["--runner=PrismRunner", f"--prism_location={prism}", "--environment_type=LOOPBACK"],
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="evalsuite-engines-") as scratch:
        root = Path(scratch)
        run_dir = root / "run"
        log("engines: training the run on the bundled digits ...")
        run_process("training", "--run-dir", str(run_dir), "--data", "bundled", "--histogram-freq", "0", "-q")
        data = RunDir(run_dir).stage("data")
        folder = root / "eval"
        log(f"engines: writing {examples:,} evaluation examples ...")
        make_eval_set(str(run_dir / data["pattern"]), recorded_spec(data, "manifest"), examples, folder)
        summaries = {}
        for name, beam in engines.items():
            log(f"engines: {examples:,} examples on {name} ...")
            result = run_process(
                "analysis", "--run-dir", str(run_dir), "--eval-data", str(folder), "--force", "-q", "--", *beam
            )
            summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
            summaries[name] = summary["paired"]["overall"]
            rows.append({"engine": name, "examples": examples, **result})
        if len({json.dumps(paired, sort_keys=True) for paired in summaries.values()}) != 1:
            raise SystemExit("benchmark: the engines disagree on the paired counts")
    one = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = one / row["seconds"]
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [f"{'engine':<26} {'examples':>10} {'seconds':>9} {'speedup':>8} {'peak MB':>9}"]
    for row in rows:
        lines.append(
            f"{row['engine']:<26} {row['examples']:>10,} {row['seconds']:>9.1f} {row['speedup']:>8.2f} "
            f"{row['peak_mb'] or 0:>9.0f}"
        )
    lines.append("Flink, Spark: not tested here (their Beam job servers cannot be had from these machines)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks engines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100_000, help="evaluation examples (default 100,000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    log = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    rows = bench(args.examples, log)
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0
