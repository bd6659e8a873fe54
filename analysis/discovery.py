"""Where did it get worse: sub-populations no one named, found on one half of the examples, confirmed on the other.

Candidate slices are built without any outcome: each image property cut into
equal-count bins (tenths overall, fifths within a class) and k-means regions of
the baseline's own representation (overall and within a class). The evaluation
examples are split by a seeded hash of their index into a discovery half and a
confirmation half, stratified by class. On the discovery half every candidate
is scored by the one-sided McNemar mid-p of newly wrong against newly right;
the few strongest are kept. Only the confirmation half, which took no part in
choosing them, decides: the exact one-sided mid-p, Holm across the kept slices,
and the paired delta with its Tango interval. A slice is "regressed" when it is
confirmed and its drop exceeds the per-class tolerance.

The counts are integer group-bys over the per-example outcomes of the pass that
lists the changed examples, whose totals are checked against TFMA's paired
counts; TFMA slicing every candidate (hundreds to tens of thousands of them,
twice) would multiply the metric work of the whole analysis.
"""

from __future__ import annotations

import numpy as np

from analysis.image_properties import property_names
from evalsuite.data.class_names import title
from evalsuite.rules import paired_stats
from evalsuite.run.contract import BOTH_RIGHT, NEWLY_RIGHT, NEWLY_WRONG, class_slice

OVERALL_BINS = 10  # tenths of every example
CLASS_BINS = 5  # fifths of one class's examples
MIN_DISCOVERY_EXAMPLES = 10  # a candidate needs this many examples in the discovery half to be scored
SCREEN_P = 0.05  # kept only when the discovery half already points this way
MAX_KEPT = 3  # every slice kept costs the confirmation power (Holm across the kept)
MAX_OVERLAP = 0.5  # a candidate sharing more than this share of its members with a kept slice adds nothing
MAX_CLASSES_CLUSTERED = 100  # beyond this many classes, regions are found overall only
REGION_SIZES = (50,)  # overall regions of about this many examples each
MAX_REGIONS = 64
REGIONS_PER_CLASS = (3,)
CLUSTER_FIT_SAMPLE = 20000
SHOWN_RIGHT = 8
ORDINALS = {OVERALL_BINS: "tenth", CLASS_BINS: "fifth"}


def halves(labels: np.ndarray, seed: int) -> np.ndarray:
    """True for the confirmation half: within each class, every other example in the order of a seeded hash."""
    index = np.arange(len(labels), dtype=np.uint64)
    hashed = _mix(index ^ _mix(np.full(len(labels), seed, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)))
    order = np.lexsort((hashed, labels))
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    rank = np.arange(len(labels)) - np.repeat(starts, np.diff(np.r_[starts, len(labels)]))
    confirmation = np.empty(len(labels), dtype=bool)
    confirmation[order] = rank % 2 == 1
    return confirmation


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a seeded hash of each index, the same on every machine."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def discover(
    labels: np.ndarray,
    base_right: np.ndarray,
    cand_right: np.ndarray,
    properties: dict[str, np.ndarray],
    representation: np.ndarray | None,
    *,
    seed: int,
    alpha: float,
    max_drop: float | None,
    class_names: list[str] | None,
    channels: int,
    representation_note: str | None = None,
) -> dict:
    """What `analysis/discovered.json` holds: the candidates considered, the halves, and each kept slice."""
    labels = np.asarray(labels, dtype=np.int64)
    newly_wrong = base_right & ~cand_right
    newly_right = ~base_right & cand_right
    confirmation = halves(labels, seed)
    families = list(_property_families(labels, properties, channels, class_names))
    if representation is not None:
        families += list(_region_families(labels, representation, seed, class_names))
    scored = []
    kinds: dict[str, int] = {}
    for family in families:
        kinds[family["kind"]] = kinds.get(family["kind"], 0) + len(family["describe"])
        scored += _score(family, ~confirmation, newly_right, newly_wrong)
    kept = _keep(scored)
    both_right = base_right & cand_right
    slices = [_confirm(slice_, confirmation, newly_right, newly_wrong, both_right, labels) for slice_ in kept]
    rejected = paired_stats.holm({s["id"]: s["confirmation"]["p_value"] for s in slices}, alpha) if slices else {}
    tolerance = max_drop if max_drop is not None else 0.0
    for slice_ in slices:
        confirmed = rejected[slice_["id"]]
        drop = -slice_["confirmation"]["delta"]
        slice_["confirmed"] = confirmed
        slice_["status"] = "regressed" if confirmed and drop > tolerance else "not confirmed"
    return {
        "seed": seed,
        "alpha": alpha,
        "tolerance": tolerance,
        "candidates": {"total": sum(kinds.values()), "by_kind": kinds},
        "representation": representation_note or "the baseline's last layer's input, clustered by k-means",
        "halves": {"discovery": int(np.sum(~confirmation)), "confirmation": int(np.sum(confirmation))},
        "slices": slices,
    }


def _property_families(labels, properties, channels, class_names):
    words = property_names(channels)
    for name, values in properties.items():
        bins = _equal_count_bins(values, OVERALL_BINS, np.zeros_like(labels))
        yield _family("property", name, bins, OVERALL_BINS, None, values, words[name], class_names, labels)
        within = _equal_count_bins(values, CLASS_BINS, labels)
        yield _family("property", name, labels * CLASS_BINS + within, CLASS_BINS, labels, values, words[name], class_names, labels)


def _family(kind, name, groups, bins, by_class, values, words, class_names, labels):
    """One family of candidate slices: a group id per example and a description per group."""
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    lows = np.minimum.reduceat(values[order], starts)
    highs = np.maximum.reduceat(values[order], starts)
    describe = {}
    for group, low, high in zip(ordered[starts].tolist(), lows.tolist(), highs.tolist()):
        position = int(group % bins)
        where = f"{words} in the {_ordinal(position, bins)} ({low:.3g} to {high:.3g})"
        klass = int(group // bins) if by_class is not None else None
        text = f"{title(class_slice(klass), class_names)}, {where}" if klass is not None else where
        describe[int(group)] = (text, klass, f"{name}:{'all' if klass is None else klass}:{position}")
    return {"kind": kind, "groups": groups, "describe": describe}


def _ordinal(position: int, bins: int) -> str:
    word = ORDINALS[bins]
    if position == 0:
        return f"lowest {word}"
    if position == bins - 1:
        return f"top {word}"
    suffix = {1: "nd", 2: "rd"}.get(position, "th")
    return f"{position + 1}{suffix} {word}"


def _equal_count_bins(values: np.ndarray, bins: int, strata: np.ndarray) -> np.ndarray:
    """Within each stratum, the examples ranked by value (ties by index) and cut into `bins` equal counts."""
    order = np.lexsort((np.arange(len(values)), values, strata))
    sorted_strata = strata[order]
    starts = np.flatnonzero(np.r_[True, sorted_strata[1:] != sorted_strata[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    rank = np.arange(len(values)) - np.repeat(starts, sizes)
    out = np.empty(len(values), dtype=np.int64)
    out[order] = rank * bins // np.repeat(sizes, sizes)
    return out


def _region_families(labels, representation, seed, class_names):
    """k-means regions of the baseline's representation, overall and within each class.

    On one thread: k-means' sums then do not depend on how many cores the machine has (so neither do the
    regions), and on the few hundred points of a class, threads cost more than they save.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return list(_regions_on_one_thread(labels, representation, seed, class_names, KMeans))


def _regions_on_one_thread(labels, representation, seed, class_names, KMeans):
    count = len(labels)
    for size in REGION_SIZES:
        k = int(min(MAX_REGIONS, max(2, count // size)))
        yield _regions(_kmeans(representation, k, seed, KMeans), None, labels, class_names, f"{k}")
    classes = np.unique(labels)
    if len(classes) > MAX_CLASSES_CLUSTERED:
        return
    for per_class in REGIONS_PER_CLASS:
        within = np.full(count, -1, dtype=np.int64)
        for klass in classes:
            members = np.flatnonzero(labels == klass)
            if len(members) >= per_class * 2 * MIN_DISCOVERY_EXAMPLES:
                within[members] = klass * per_class + _kmeans(representation[members], per_class, seed, KMeans)
        if (within >= 0).any():
            yield _regions(within, per_class, labels, class_names, f"class/{per_class}")


def _kmeans(points: np.ndarray, k: int, seed: int, kmeans) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sample = points if len(points) <= CLUSTER_FIT_SAMPLE else points[rng.choice(len(points), CLUSTER_FIT_SAMPLE, replace=False)]
    model = kmeans(n_clusters=k, random_state=seed, n_init=3).fit(sample)
    return model.predict(points).astype(np.int64)


def _regions(groups, per_class, labels, class_names, scale):
    describe = {}
    sizes = np.bincount(groups[groups >= 0])
    for group in np.flatnonzero(sizes):
        size = int(sizes[group])
        if per_class is None:
            describe[int(group)] = (f"region {group + 1} of the baseline's representation: {size} examples", None, f"region:{scale}:{group}")
        else:
            klass, region = int(group // per_class), int(group % per_class)
            name = title(class_slice(klass), class_names)
            describe[int(group)] = (f"region {region + 1} of {name}: {size} examples", klass, f"region:{scale}:{klass}:{region}")
    return {"kind": "representation", "groups": groups, "describe": describe}


def _counts(members: np.ndarray, newly_right: np.ndarray, newly_wrong: np.ndarray, both_right: np.ndarray) -> dict:
    return {
        "examples": int(np.sum(members)),
        BOTH_RIGHT: int(np.sum(both_right & members)),
        NEWLY_RIGHT: int(np.sum(newly_right & members)),
        NEWLY_WRONG: int(np.sum(newly_wrong & members)),
    }


def _score(family, discovery, newly_right, newly_wrong) -> list[dict]:
    """Every candidate of one family with enough discovery examples, and its discovery-half mid-p."""
    from scipy.stats import binom

    groups = family["groups"]
    valid = (groups >= 0) & discovery
    size = np.max(groups) + 1
    n = np.bincount(groups[valid], minlength=size)
    right = np.bincount(groups[valid], weights=newly_right[valid], minlength=size).astype(np.int64)
    wrong = np.bincount(groups[valid], weights=newly_wrong[valid], minlength=size).astype(np.int64)
    out = []
    for group, (text, klass, key) in family["describe"].items():
        if n[group] < MIN_DISCOVERY_EXAMPLES or wrong[group] <= right[group]:
            continue
        d = int(right[group] + wrong[group])
        p = float(binom.sf(wrong[group], d, 0.5) + 0.5 * binom.pmf(wrong[group], d, 0.5))
        out.append(
            {"key": key, "kind": family["kind"], "description": text, "class": klass, "p": p,
             "excess": int(wrong[group] - right[group]), "groups": groups, "group": group}
        )
    return out


def _keep(scored: list[dict]) -> list[dict]:
    """The strongest few, each adding members of its own, strongest first."""
    kept: list[dict] = []
    for candidate in sorted(scored, key=lambda c: (c["p"], -c["excess"], c["key"])):
        if candidate["p"] > SCREEN_P or len(kept) == MAX_KEPT:
            break
        members = candidate["groups"] == candidate["group"]  # made only for the few looked at
        size = int(np.sum(members))
        if any(np.sum(members & k["members"]) > MAX_OVERLAP * min(size, np.sum(k["members"])) for k in kept):
            continue
        kept.append({**candidate, "members": members})
    return kept


def _confirm(candidate: dict, confirmation, newly_right, newly_wrong, both_right, labels) -> dict:
    members = candidate["members"]
    found = _counts(members & ~confirmation, newly_right, newly_wrong, both_right)
    checked = _counts(members & confirmation, newly_right, newly_wrong, both_right)
    for counts in (found, checked):
        right, wrong, n = counts[NEWLY_RIGHT], counts[NEWLY_WRONG], counts["examples"]
        counts["p_value"] = round(paired_stats.worse_p_value(right, wrong), 6)
        counts["delta"] = round(paired_stats.delta(right, wrong, n), 6) if n else 0.0
        low, high = paired_stats.tango_interval(right, wrong, n) if n else (0.0, 0.0)
        counts["interval"] = [round(low, 6), round(high, 6)]
    return {
        "id": candidate["key"],
        "description": candidate["description"],
        "kind": candidate["kind"],
        "class": candidate["class"],
        "members": np.flatnonzero(members).tolist(),
        # A few members both models get right, so a reader sees what the slice is, not only its failures.
        "both_right_examples": [
            {"index": int(i), "label": int(labels[i])} for i in np.flatnonzero(members & both_right)[:SHOWN_RIGHT]
        ],
        "discovery": found,
        "confirmation": checked,
    }
