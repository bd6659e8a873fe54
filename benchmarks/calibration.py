"""python -m benchmarks calibration: how often the default rules fail healthy runs, and catch real drops.

Trains N seeds the way the pipeline does (the training stage itself, into a
scratch run folder), scores both models on the evaluation examples through
their serving signatures, and judges the paired counts with the gate's own
rules (`evalsuite.rules.definitions.judge`; the counts equal TFMA's, which the tests
check). Then, from the same real predictions, plants regressions: one class
loses k of the examples the candidate got right (5, 10, 20 points of that
class), and counts how often the per-class rule catches it.

Examples:
    python -m benchmarks calibration                       # 20 seeds on the bundled digits
    python -m benchmarks calibration --seeds 5 --data /usr/share/datasets/fashion-mnist
    python -m benchmarks calibration --seeds 0 --recipe-seeds 5   # the recipe draws alone
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.planting import DROPS, plant
from evalsuite.rules.definitions import NEWLY_WRONG_RATE, judge, tfma_thresholds
from evalsuite.rules.evidence import Evidence
from evalsuite.rules.settings import GateRules, load_rules
from evalsuite.run.contract import ACCURACY, DEFAULT_BASELINE, DEFAULT_CANDIDATE, NEWLY_RIGHT, NEWLY_WRONG, class_slice

TARGETS = {
    ("false failures", 100): 0.05,  # on the default data, at most this share of healthy seeds may fail
    ("caught", 0.20, 100): 0.95,  # at least this share of 20-point drops at 100 per class
    ("caught", 0.05, 1000): 0.95,  # at least this share of 5-point drops at 1,000 per class
}


def correctness(data: str, seed: int, workdir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, predictions and per-example correctness of the 3- and 6-epoch models of one seed."""
    import tensorflow as tf

    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.folder import RunDir
    from training.train import TrainConfig, train

    with RunDir(workdir / f"seed-{seed}") as run:
        train(run, TrainConfig(data=data, seed=seed, histogram_freq=0, verbose=0), log=lambda message: None)
        spec = recorded_spec(run.stage("data"), str(run.manifest_path))
        _, labels, records, _ = read_examples(str(run.data_dir / "eval-*.tfrecord"), spec)
        predicted = []
        for name in (DEFAULT_BASELINE, DEFAULT_CANDIDATE):
            serve = tf.saved_model.load(str(run.model_dir(name))).signatures["serving_default"]
            outputs = [
                serve(tf.constant(records[i : i + 1024]))["probabilities"].numpy().argmax(axis=1)
                for i in range(0, len(records), 1024)
            ]
            predicted.append(np.concatenate(outputs))
    return labels, predicted[0], predicted[1]


def _classes(labels: np.ndarray) -> range:
    """Every class 0..K-1 (the evaluation data hold examples of each; the analysis insists)."""
    return range(int(labels.max()) + 1)


def paired_counts(labels: np.ndarray, base_right: np.ndarray, cand_right: np.ndarray) -> dict:
    counts = {}
    for sid, mask in [("overall", np.ones_like(labels, dtype=bool))] + [
        (class_slice(c), labels == c) for c in _classes(labels)
    ]:
        b, c = base_right[mask], cand_right[mask]
        counts[sid] = {
            "both_right": int(np.sum(b & c)),
            NEWLY_RIGHT: int(np.sum(~b & c)),
            NEWLY_WRONG: int(np.sum(b & ~c)),
            "both_wrong": int(np.sum(~b & ~c)),
        }
    return counts


def verdict_from_counts(rules: GateRules, counts: dict) -> list:
    """The gate's checks on these counts; TFMA's point decisions recomputed from the same thresholds."""
    models = {"baseline": {}, "candidate": {}}
    deltas = {}
    for sid, cells in counts.items():
        n = sum(cells.values())
        models["baseline"][sid] = {"accuracy": (cells["both_right"] + cells[NEWLY_WRONG]) / n, "examples": n}
        models["candidate"][sid] = {"accuracy": (cells["both_right"] + cells[NEWLY_RIGHT]) / n, "examples": n}
        deltas[sid] = {"accuracy": models["candidate"][sid]["accuracy"] - models["baseline"][sid]["accuracy"]}
    per_class = {str(c): sum(counts[class_slice(c)].values()) for c in range(len(counts) - 1)}
    total = sum(counts["overall"].values())
    failures = set()
    for threshold in tfma_thresholds(rules, total, per_class):
        if threshold.metric == ACCURACY and threshold.kind == "change":
            value = deltas[threshold.slice]["accuracy"]
        elif threshold.metric == ACCURACY:
            value = models["candidate"][threshold.slice]["accuracy"]
        elif threshold.metric == NEWLY_WRONG_RATE:
            cells = counts[threshold.slice]
            value = cells[NEWLY_WRONG] / sum(cells.values())
        else:
            continue
        if (threshold.lower is not None and value < threshold.lower) or (
            threshold.upper is not None and value > threshold.upper
        ):
            failures.add((threshold.metric, threshold.slice, threshold.kind))
    summary = {
        "eval_data": {"examples": total, "examples_per_class": per_class, "class_names": None},
        "models": models,
        "deltas": deltas,
        "paired": counts,
    }
    return judge(rules, Evidence(summary, failures, Path("calibration")))


def calibrate(data: str, seeds: list[int], draws: int, rules: GateRules, log) -> dict:
    rows = []
    caught: dict[float, list[bool]] = {drop: [] for drop in DROPS}
    with tempfile.TemporaryDirectory(prefix="evalsuite-calibration-") as scratch:
        for seed in seeds:
            started = time.perf_counter()
            labels, base_pred, cand_pred = correctness(data, seed, Path(scratch))
            base_right, cand_right = base_pred == labels, cand_pred == labels
            counts = paired_counts(labels, base_right, cand_right)
            checks = verdict_from_counts(rules, counts)
            passed = all(check.passed for check in checks)
            delta = float(np.mean(cand_right) - np.mean(base_right))
            rows.append(
                {
                    "seed": seed,
                    "overall_delta": delta,
                    "passed": passed,
                    "failed_checks": [
                        f"{c.rule} {c.slice} (delta {c.delta:+.3f}, p {c.p_value:.2g})" for c in checks if not c.passed
                    ],
                    "inconclusive": sum(c.status == "inconclusive" for c in checks),
                    "worst_class_delta": min(c.delta for c in checks if c.rule == "per-class drop"),
                }
            )
            rng = np.random.default_rng(seed)
            for drop in DROPS:
                for class_id in _classes(labels):
                    for _ in range(draws):
                        planted = plant(labels, base_right, cand_right, class_id, drop, rng)
                        if planted is None:
                            continue
                        result = verdict_from_counts(rules, paired_counts(labels, base_right, planted))
                        hit = any(
                            c.rule == "per-class drop" and c.slice == class_slice(class_id) and c.status == "fail"
                            for c in result
                        )
                        caught[drop].append(hit)
            log(
                f"seed {seed}: overall delta {delta:+.4f}, {'PASS' if passed else 'FAIL'}"
                f"{' (' + ', '.join(rows[-1]['failed_checks']) + ')' if not passed else ''} "
                f"in {time.perf_counter() - started:.1f}s"
            )
        per_class = int(np.bincount(labels).min())
    healthy = [row for row in rows if row["overall_delta"] > 0]
    return {
        "data": data,
        "examples_per_class": per_class,
        "seeds": rows,
        "healthy_seeds": len(healthy),
        "false_failure_rate": (sum(not row["passed"] for row in healthy) / len(healthy)) if healthy else None,
        "caught": {f"{drop:.2f}": {"rate": float(np.mean(hits)), "trials": len(hits)} for drop, hits in caught.items()},
    }


def format_report(result: dict) -> str:
    n = result["examples_per_class"]
    lines = [
        f"data {result['data']}: {len(result['seeds'])} seeds, {n} evaluation examples per class",
        f"  seeds whose overall accuracy improves: {result['healthy_seeds']}",
    ]
    rate = result["false_failure_rate"]
    target = TARGETS.get(("false failures", n))
    if rate is not None:
        verdict = f" (target <= {target:.0%}: {'met' if rate <= target else 'MISSED'})" if target else ""
        lines.append(f"  failed among them: {rate:.1%}{verdict}")
        for row in result["seeds"]:
            if row["overall_delta"] > 0 and not row["passed"]:
                lines.append(f"    seed {row['seed']}: {'; '.join(row['failed_checks'])}")
    for drop, caught in result["caught"].items():
        goal = TARGETS.get(("caught", float(drop), n))
        verdict = f" (target >= {goal:.0%}: {'met' if caught['rate'] >= goal else 'MISSED'})" if goal else ""
        lines.append(
            f"  one class planted {float(drop):.0%} below the baseline, caught: {caught['rate']:.1%} "
            f"of {caught['trials']} trials{verdict}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks calibration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", default="bundled", help="bundled (default) or a data path, as for the pipeline")
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds to train (default 20)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--draws", type=int, default=5, help="planted regressions per class, drop and seed")
    parser.add_argument("--rules", type=Path, default=None, help="gate rules (default: ./gate.toml, else built-in)")
    parser.add_argument(
        "--recipe-seeds", type=int, default=5, help="seeds per recipe verdict (default 5; 0: no recipe draws)"
    )
    parser.add_argument("--recipe-pool", type=int, default=20, help="seeds trained on one split to draw from")
    parser.add_argument("--recipe-verdicts", type=int, default=20, help="recipe verdicts drawn from the pool")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    from evalsuite.libraries import quiet_libraries

    quiet_libraries()
    rules = load_rules(args.rules)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if args.recipe_seeds and not 2 <= args.recipe_seeds <= args.recipe_pool <= 50:
        parser.error("--recipe-seeds: between 2 and --recipe-pool (at most 50), or 0 for none")
    result = {}
    if seeds:
        result = calibrate(args.data, seeds, args.draws, rules, log)
        print(format_report(result))
    if args.recipe_seeds:
        from benchmarks.recipe_calibration import calibrate_recipes, format_recipe_report

        with tempfile.TemporaryDirectory(prefix="evalsuite-calibration-") as scratch:
            result["recipe"] = calibrate_recipes(
                args.data,
                args.recipe_pool,
                args.recipe_seeds,
                args.recipe_verdicts,
                args.draws,
                rules,
                Path(scratch),
                log,
            )
        print(format_recipe_report(result["recipe"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
