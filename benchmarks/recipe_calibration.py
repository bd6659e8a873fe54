"""Recipe draws for `python -m benchmarks calibration`: how the verdict across seeds fails and catches.

Trains a pool of seeds of the recipe the way `--seeds N` does (the training
stage itself, every seed on the split of the first), scores every model
through its serving signature, and judges draws of N seeds from the pool
with the gate's own recipe rules (`evalsuite.rules.recipe.judge_recipe`, on
the counts TFMA's recipe metric keeps; the tests check the metric against
the same counts). Then plants regressions in every drawn seed's candidate:
one class loses examples it got right until it sits k points below that
seed's baseline, and counts how often the recipe's per-class rule catches it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.planting import DROPS, plant
from evalsuite.rules.recipe import judge_recipe
from evalsuite.rules.settings import GateRules
from evalsuite.run.contract import class_slice

DATA_SEED = 42  # the split every pooled seed trains on (the pipeline's default)
TARGETS = {  # on the bundled digits (100 evaluation examples per class), 5 seeds per verdict
    ("false failures", 100): 0.05,
    ("caught", 0.05, 100): 0.50,
    ("caught", 0.10, 100): 0.95,
}


def pooled_outcomes(data: str, pool: int, workdir: Path, log) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and (pool, examples) right/wrong of the baselines and candidates of `pool` seeds on one split."""
    import tensorflow as tf

    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.contract import DEFAULT_EPOCHS, run_name
    from evalsuite.run.folder import RunDir
    from training.train import TrainConfig, recipe_seeds, train

    config = TrainConfig(data=data, seed=DATA_SEED, seeds=pool, histogram_freq=0, verbose=0)
    started = time.perf_counter()
    with RunDir(workdir / "recipe-pool") as run:
        train(run, config, log=lambda message: None)
        log(f"recipe pool: {pool} seeds trained on one split in {time.perf_counter() - started:.1f}s")
        spec = recorded_spec(run.stage("data"), str(run.manifest_path))
        _, labels, records, _ = read_examples(str(run.data_dir / "eval-*.tfrecord"), spec)
        rights = {}
        for epochs in (min(DEFAULT_EPOCHS), max(DEFAULT_EPOCHS)):
            rows = []
            for seed in recipe_seeds(config):
                name = run_name(epochs, None if seed == DATA_SEED else seed)
                serve = tf.saved_model.load(str(run.model_dir(name))).signatures["serving_default"]
                predicted = np.concatenate(
                    [
                        serve(tf.constant(records[i : i + 1024]))["probabilities"].numpy().argmax(axis=1)
                        for i in range(0, len(records), 1024)
                    ]
                )
                rows.append(predicted == labels)
            rights[epochs] = np.stack(rows)
    return labels, rights[min(DEFAULT_EPOCHS)], rights[max(DEFAULT_EPOCHS)]


def recipe_summary(labels: np.ndarray, base: np.ndarray, cand: np.ndarray) -> dict:
    """The summary fields the recipe rules read, counted by the analysis' own recipe metric's counting."""
    from analysis.recipe_counts import count_outcomes, counts_as_json

    seeds = len(base)
    classes = int(labels.max()) + 1
    slices = {"overall": np.ones(len(labels), bool)} | {class_slice(c): labels == c for c in range(classes)}
    counted = {}
    for sid, mask in slices.items():
        tally = count_outcomes(base[:, mask], cand[:, mask])
        counted[sid] = counts_as_json(tally.cells, tally.outcomes, tally.floor)
    return {
        "eval_data": {
            "examples": len(labels),
            "examples_per_class": {str(c): int(np.sum(labels == c)) for c in range(classes)},
            "class_names": None,
        },
        "paired": {sid: counts["per_seed"][0] for sid, counts in counted.items()},
        "recipe": {"seeds": list(range(seeds)), "shared_baseline": False, "slices": counted},
    }


def calibrate_recipes(
    data: str, pool: int, seeds: int, verdicts: int, draws: int, rules: GateRules, workdir: Path, log
) -> dict:
    labels, base, cand = pooled_outcomes(data, pool, workdir, log)
    rng = np.random.default_rng(DATA_SEED)
    rows, caught = [], {drop: [] for drop in DROPS}
    floors, newly_wrong = [], []
    for _ in range(verdicts):
        chosen = np.sort(rng.choice(pool, size=seeds, replace=False))
        b, c = base[chosen], cand[chosen]
        checks, floor = judge_recipe(rules, recipe_summary(labels, b, c), "calibration")
        delta = float(np.mean(c) - np.mean(b))
        rows.append(
            {
                "seeds": chosen.tolist(),
                "overall_delta": delta,
                "passed": all(check.passed for check in checks),
                "failed_checks": [f"{x.rule} {x.slice} (delta {x.delta:+.3f})" for x in checks if not x.passed],
            }
        )
        floors.append(floor["overall"])
        newly_wrong.append(float(np.mean([np.sum(bb & ~cc) / len(labels) for bb, cc in zip(b, c)])))
        for drop in DROPS:
            for class_id in range(int(labels.max()) + 1):
                for _ in range(draws):
                    planted = [plant(labels, bb, cc, class_id, drop, rng) for bb, cc in zip(b, c)]
                    if any(p is None for p in planted):
                        continue
                    result, _ = judge_recipe(rules, recipe_summary(labels, b, np.stack(planted)), "calibration")
                    caught[drop].append(
                        any(
                            x.rule == "per-class drop" and x.slice == class_slice(class_id) and x.status == "fail"
                            for x in result
                        )
                    )
    null = _null_calibration(labels, base, seeds, verdicts, rules, rng)
    healthy = [row for row in rows if row["overall_delta"] > 0]
    return {
        "null": null,
        "data": data,
        "pool": pool,
        "seeds_per_verdict": seeds,
        "examples_per_class": int(np.bincount(labels).min()),
        "verdicts": rows,
        "healthy_verdicts": len(healthy),
        "false_failure_rate": (sum(not row["passed"] for row in healthy) / len(healthy)) if healthy else None,
        "churn_floor_overall_mean": float(np.mean(floors)),
        "newly_wrong_overall_mean": float(np.mean(newly_wrong)),
        "caught": {f"{drop:.2f}": {"rate": float(np.mean(hits)), "trials": len(hits)} for drop, hits in caught.items()},
    }


def _null_calibration(labels, base, seeds: int, verdicts: int, rules: GateRules, rng) -> dict:
    """A recipe against itself: 3 epochs of some seeds paired with 3 epochs of others, where no real effect exists.

    How often a slice's one-sided p-value falls below 5 % (its nominal rate), and how often the
    verdict fails; the first says whether the interval is calibrated on real models, not on a formula.
    """
    if 2 * seeds > len(base):
        return {}
    below, failed = [], 0
    for _ in range(verdicts):
        chosen = rng.choice(len(base), size=2 * seeds, replace=False)
        checks, _ = judge_recipe(rules, recipe_summary(labels, base[chosen[:seeds]], base[chosen[seeds:]]), "null")
        drops = [check for check in checks if check.rule == "per-class drop"]
        below += [check.p_value < 0.05 for check in drops]
        failed += any(check.status == "fail" for check in drops)
    return {"p_below_5_percent": float(np.mean(below)), "slices": len(below), "failed": failed, "verdicts": verdicts}


def format_recipe_report(result: dict) -> str:
    n = result["examples_per_class"]
    lines = [
        f"recipe verdicts: {len(result['verdicts'])} draws of {result['seeds_per_verdict']} seeds from a pool of "
        f"{result['pool']} trained on one split, {n} evaluation examples per class",
        f"  draws whose overall accuracy improves: {result['healthy_verdicts']}",
        f"  churn floor overall {result['churn_floor_overall_mean']:.4f}, the candidates' newly wrong "
        f"{result['newly_wrong_overall_mean']:.4f} (means over draws)",
    ]
    null = result.get("null") or {}
    if null:
        lines.append(
            f"  null recipe (3 epochs against 3 epochs of other seeds): one-sided p < 0.05 on "
            f"{null['p_below_5_percent']:.1%} of {null['slices']} class checks (nominal 5%); "
            f"{null['failed']} of {null['verdicts']} verdicts failed a class"
        )
    rate = result["false_failure_rate"]
    target = TARGETS.get(("false failures", n)) if result["seeds_per_verdict"] == 5 else None
    if rate is not None:
        verdict = f" (target <= {target:.0%}: {'met' if rate <= target else 'MISSED'})" if target is not None else ""
        lines.append(f"  failed among them: {rate:.1%}{verdict}")
        for row in result["verdicts"]:
            if row["overall_delta"] > 0 and not row["passed"]:
                lines.append(f"    seeds {row['seeds']}: {'; '.join(row['failed_checks'])}")
    for drop, caught in result["caught"].items():
        goal = TARGETS.get(("caught", float(drop), n)) if result["seeds_per_verdict"] == 5 else None
        verdict = f" (target >= {goal:.0%}: {'met' if caught['rate'] >= goal else 'MISSED'})" if goal else ""
        lines.append(
            f"  one class of every seed's candidate planted {float(drop):.0%} below its baseline, caught: "
            f"{caught['rate']:.1%} of {caught['trials']} trials{verdict}"
        )
    return "\n".join(lines)
