"""python -m benchmarks discovery: how often discovery calls a healthy run regressed, and how often it finds a plant.

Healthy runs: each seed's default comparison (6 epochs against 3), and a model
against a retrained copy of itself (the next seed's 6-epoch model). Planted
regressions, in each seed's real candidate: a sub-population of 5 % of the
evaluation examples, spread over the classes, where the candidate loses half
of the examples it got right. The sub-population is either an image
property's tail (each property, low and high) or a region of the baseline's
representation (the examples nearest a randomly drawn one, in the full
activations, not the projection discovery clusters). A plant is found when a
regressed slice covers at least half of the planted examples and at least 30 %
of its members are planted.

Example:
    python -m benchmarks discovery --seeds 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.discovery import discover
from analysis.image_properties import image_properties
from evalsuite.rules.settings import GateRules

PLANTED_SHARE = 0.05
LOSS = 0.5  # of the planted examples the candidate gets right, the share it loses
REGIONS_PER_SEED = 4
TARGETS = {"healthy runs with a regressed slice": 0.05, "plants found": 0.80}


def seed_outcomes(data: str, seed: int, workdir: Path) -> dict:
    """One seed trained: labels, images, both models' right/wrong, the baseline's representation."""
    import tensorflow as tf

    from analysis.representation import Representation
    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.contract import DEFAULT_BASELINE, DEFAULT_CANDIDATE
    from evalsuite.run.folder import RunDir
    from training.train import TrainConfig, train

    with RunDir(workdir / f"seed-{seed}") as run:
        train(run, TrainConfig(data=data, seed=seed, histogram_freq=0, verbose=0), log=lambda message: None)
        spec = recorded_spec(run.stage("data"), str(run.manifest_path))
        images, labels, records, _ = read_examples(str(run.data_dir / "eval-*.tfrecord"), spec)
        outputs = {}
        for name in (DEFAULT_BASELINE, DEFAULT_CANDIDATE):
            serve = tf.saved_model.load(str(run.model_dir(name))).signatures["serving_default"]
            outputs[name] = np.concatenate(
                [serve(tf.constant(records[i : i + 1024]))["probabilities"].numpy() for i in range(0, len(records), 1024)]
            )
        found = {}
        for name in (DEFAULT_BASELINE, DEFAULT_CANDIDATE):
            represent = Representation(run.model_dir(name), spec, seed, len(labels))
            projected = represent(images, outputs[name].argmax(axis=1), outputs[name].max(axis=1))
            full = np.asarray(represent.model(images.astype(np.float32).reshape(-1, *spec.input_shape) / 255.0))
            found[name] = (projected, full)
    return {
        "labels": labels,
        "images": images,
        "channels": spec.channels,
        "base_right": outputs[DEFAULT_BASELINE].argmax(axis=1) == labels,
        "cand_right": outputs[DEFAULT_CANDIDATE].argmax(axis=1) == labels,
        "base_projected": found[DEFAULT_BASELINE][0],
        "base_full": found[DEFAULT_BASELINE][1],
        "cand_projected": found[DEFAULT_CANDIDATE][0],
    }


def regressed_slices(labels, base_right, cand_right, properties, representation, rules, seed, channels) -> list[dict]:
    result = discover(
        labels, base_right, cand_right, properties, representation,
        seed=seed, alpha=rules.alpha, max_drop=rules.max_drop, class_names=None, channels=channels,
    )
    return [s for s in result["slices"] if s["status"] == "regressed"]


def plants(outcomes: dict, properties: dict, rng) -> list[tuple[str, np.ndarray]]:
    """(what was planted, the planted examples' indices): every property's two tails and a few regions."""
    count = len(outcomes["labels"])
    size = int(round(PLANTED_SHARE * count))
    found = []
    for name, values in properties.items():
        order = np.lexsort((np.arange(count), values))
        found.append((f"{name} low", order[:size]))
        found.append((f"{name} high", order[-size:]))
    full = outcomes["base_full"]
    for _ in range(REGIONS_PER_SEED):
        centre = full[rng.integers(count)]
        nearest = np.argsort(np.sum((full - centre) ** 2, axis=1), kind="stable")[:size]
        found.append(("region", nearest))
    return found


def planted_candidate(cand_right: np.ndarray, planted: np.ndarray, rng) -> np.ndarray:
    right = planted[cand_right[planted]]
    lost = rng.choice(right, size=int(round(LOSS * len(right))), replace=False)
    worse = cand_right.copy()
    worse[lost] = False
    return worse


def is_found(slices: list[dict], planted: np.ndarray) -> bool:
    planted_set = set(planted.tolist())
    for found in slices:
        members = set(found["members"])
        shared = len(members & planted_set)
        if shared >= 0.5 * len(planted_set) and shared >= 0.3 * len(members):
            return True
    return False


def calibrate(data: str, seeds: list[int], rules: GateRules, log) -> dict:
    healthy, copies, planted_runs = [], [], {}
    with tempfile.TemporaryDirectory(prefix="evalsuite-discovery-") as scratch:
        previous = None
        for seed in seeds + [seeds[-1] + 1]:
            started = time.perf_counter()
            outcomes = seed_outcomes(data, seed, Path(scratch))
            properties = image_properties(outcomes["images"])
            labels, channels = outcomes["labels"], outcomes["channels"]
            if seed in seeds:
                healthy.append(bool(regressed_slices(
                    labels, outcomes["base_right"], outcomes["cand_right"], properties,
                    outcomes["base_projected"], rules, seed, channels)))
                rng = np.random.default_rng(1000 + seed)
                for what, planted in plants(outcomes, properties, rng):
                    worse = planted_candidate(outcomes["cand_right"], planted, rng)
                    slices = regressed_slices(
                        labels, outcomes["base_right"], worse, properties, outcomes["base_projected"], rules, seed, channels
                    )
                    kind = "region" if what == "region" else "property"
                    planted_runs.setdefault(kind, []).append(is_found(slices, planted))
            if previous is not None:
                # The previous seed's 6-epoch model against this seed's: the same recipe retrained.
                copies.append(bool(regressed_slices(
                    labels, previous["cand_right"], outcomes["cand_right"], properties,
                    previous["cand_projected"], rules, seed, channels)))
            previous = outcomes
            log(f"discovery calibration: seed {seed} done in {time.perf_counter() - started:.1f}s")
    return {"healthy": healthy, "copies": copies, "planted": planted_runs}


def format_report(result: dict) -> str:
    healthy = result["healthy"] + result["copies"]
    found = [x for runs in result["planted"].values() for x in runs]
    lines = [
        "| what | runs | with a regressed slice / found | rate | target |",
        "|---|---|---|---|---|",
        f"| healthy: 6 epochs against 3 | {len(result['healthy'])} | {sum(result['healthy'])} | "
        f"{np.mean(result['healthy']):.1%} | |",
        f"| healthy: a model against its retrained copy | {len(result['copies'])} | {sum(result['copies'])} | "
        f"{np.mean(result['copies']):.1%} | |",
        f"| healthy runs with a regressed slice | {len(healthy)} | {sum(healthy)} | {np.mean(healthy):.1%} | "
        f"at most {TARGETS['healthy runs with a regressed slice']:.0%} |",
    ]
    for kind, runs in sorted(result["planted"].items()):
        lines.append(f"| plants found: {kind} | {len(runs)} | {sum(runs)} | {np.mean(runs):.1%} | |")
    lines.append(f"| plants found | {len(found)} | {sum(found)} | {np.mean(found):.1%} | at least {TARGETS['plants found']:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks discovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="bundled")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args(argv)
    from evalsuite.libraries import quiet_libraries
    from evalsuite.rules.settings import load_rules

    quiet_libraries()
    rules = load_rules()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    result = calibrate(args.data, seeds, rules, log)
    print(format_report(result))
    return 0
