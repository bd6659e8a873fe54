"""What the slicing browser shows, as plain data: every slice's numbers, its confusion matrix and its changed examples.

The numbers are TFMA's, in one shape whichever way they were read: from TFMA's
own output with `tfma.load_eval_result` (reports/slices_tfma.py, in `python -m
reports view`) or from analysis/summary.json, which the analysis flattened from
that same output (here, so the report stage never imports TensorFlow). The
paired interval and p-value are computed from TFMA's paired counts with the
same functions the analysis and the gate use.
"""

from __future__ import annotations

from evalsuite.data.class_names import title
from evalsuite.data.slice_features import CROSS_SEPARATOR
from evalsuite.data.spec import recorded_spec
from evalsuite.rules import paired_stats
from evalsuite.run.contract import (
    BASELINE,
    BOTH_RIGHT,
    BOTH_WRONG,
    CANDIDATE,
    NEWLY_RIGHT,
    NEWLY_WRONG,
    ROLES,
    class_of,
    num_classes_of,
)
from reports import slices_examples

SUMMARY_SOURCE = "analysis/summary.json (TFMA's output as the analysis flattened it)"
TFMA_SOURCE = "TFMA's own output, read with tfma.load_eval_result"


def numbers_from_summary(summary: dict) -> dict:
    """Per-model metrics, paired counts, accuracy diffs, cross-slice gaps and confusion matrices from summary.json.

    Each cross slice's gap is TFMA's cross-slice value, the first slice's metric minus the second's,
    for both models; the summary keeps only the candidate's accuracy gap, so the rest is that subtraction.
    """
    models = {role: summary["models"][role] for role in ROLES}
    cross = {}
    for sid in summary.get("cross_slices") or {}:
        first, _, second = sid.partition(CROSS_SEPARATOR)
        cross[sid] = {role: _gap(models[role].get(first), models[role].get(second)) for role in ROLES}
        gap = (summary["cross_slices"][sid] or {}).get("accuracy_gap")
        if gap is not None:
            cross[sid][CANDIDATE]["accuracy"] = gap
    confusion = {}
    for role in ROLES:
        for sid, matrix in (summary.get("confusion_matrices", {}).get(role) or {}).items():
            confusion.setdefault(sid, {})[role] = sparse(matrix)
    return {
        "models": models,
        "paired": summary.get("paired") or {},
        "deltas": {sid: d.get("accuracy") for sid, d in summary["deltas"].items()},
        "cross": cross,
        "confusion": confusion,
        "source": SUMMARY_SOURCE,
    }


def _gap(first: dict | None, second: dict | None) -> dict:
    """TFMA's cross-slice metrics: the first slice's value minus the second's, metric by metric."""
    gap = {}
    for metric in ("examples", "accuracy", "crossentropy"):
        a, b = (first or {}).get(metric), (second or {}).get(metric)
        gap[metric] = None if a is None or b is None else a - b
    return gap


def sparse(matrix: list[list[int]]) -> list[list[int]]:
    """A K x K confusion matrix [true][predicted] as its non-zero cells [true, predicted, count]."""
    return [[t, p, int(c)] for t, row in enumerate(matrix) for p, c in enumerate(row) if c]


def slice_rows(summary: dict, numbers: dict, discovered: dict) -> list[dict]:
    """One row per slice: overall, each class, each declared feature's values, TFMA's cross slices, discovered slices."""
    names = summary["eval_data"].get("class_names")
    models, paired, deltas = numbers["models"], numbers["paired"], numbers["deltas"]
    features = {sid: name for name, sids in (summary.get("feature_slices") or {}).items() for sid in sids}
    ordered = list(summary.get("slices") or [])
    ordered += [sid for sids in (summary.get("feature_slices") or {}).values() for sid in sids]
    ordered += [sid for sid in models[CANDIDATE] if sid not in set(ordered)]
    rows = []
    for sid in ordered:
        if sid not in models[CANDIDATE]:
            continue
        kind = "overall" if sid == "overall" else "class" if class_of(sid) is not None else "feature"
        feature = "label" if kind == "class" else features.get(sid, sid.partition("=")[0]) if kind == "feature" else ""
        base, cand = models[BASELINE].get(sid) or {}, models[CANDIDATE][sid]
        row = _row(sid, title(sid, names), kind, feature, base, cand, paired.get(sid))
        if deltas.get(sid) is not None:
            row["d"] = deltas[sid]
        rows.append(row)
    for sid, gaps in numbers["cross"].items():
        first, _, second = sid.partition(CROSS_SEPARATOR)
        name = f"{title(first, names)}{CROSS_SEPARATOR}{title(second, names)}"
        second_metrics = models[CANDIDATE].get(second) or {}
        row = _row(sid, name, "cross", "label" if class_of(second) is not None else "", gaps[BASELINE], gaps[CANDIDATE], None)
        row["n"] = second_metrics.get("examples")  # the size of the slice compared with the first
        rows.append(row)
    for found in discovered.get("slices", []):
        rows.append(_discovered_row(found, names))
    for order, row in enumerate(rows):
        row["o"] = order
    return rows


def _row(sid: str, name: str, kind: str, feature: str, base: dict, cand: dict, counts: dict | None) -> dict:
    row = {
        "id": sid,
        "name": name,
        "kind": kind,
        "feature": feature,
        "n": cand.get("examples") if cand.get("examples") is not None else base.get("examples"),
        "nb": base.get("examples"),
        "acc": [base.get("accuracy"), cand.get("accuracy")],
        "ce": [base.get("crossentropy"), cand.get("crossentropy")],
        "d": None,
    }
    if row["acc"][0] is not None and row["acc"][1] is not None:
        row["d"] = row["acc"][1] - row["acc"][0]
    row.update(_paired(counts))
    return row


def _paired(counts: dict | None) -> dict:
    """The paired table's cells, Tango's 95% interval of the delta and the one-sided p that it got worse."""
    if not counts:
        return {"nw": None, "nr": None, "br": None, "bw": None, "ci": None, "p": None}
    right, wrong = int(counts[NEWLY_RIGHT]), int(counts[NEWLY_WRONG])
    n = right + wrong + int(counts[BOTH_RIGHT]) + int(counts[BOTH_WRONG])
    interval = None
    if n:
        low, high = paired_stats.tango_interval(right, wrong, n)
        interval = [round(low, 6), round(high, 6)]
    return {
        "nw": wrong,
        "nr": right,
        "br": int(counts[BOTH_RIGHT]),
        "bw": int(counts[BOTH_WRONG]),
        "ci": interval,
        "p": paired_stats.worse_p_value(right, wrong),
    }


def _discovered_row(found: dict, names: list[str] | None) -> dict:
    """A discovered slice by its confirmation half, the half it was not found on (the honest estimate)."""
    half = found["confirmation"]
    n, right, wrong = half["examples"], half[NEWLY_RIGHT], half[NEWLY_WRONG]
    both_right = half.get(BOTH_RIGHT)
    counts = None
    if both_right is not None:
        counts = {BOTH_RIGHT: both_right, NEWLY_RIGHT: right, NEWLY_WRONG: wrong, BOTH_WRONG: n - both_right - right - wrong}
    accuracy = [None, None]
    if both_right is not None and n:
        accuracy = [(both_right + wrong) / n, (both_right + right) / n]
    row = _row(
        slices_examples.discovered_id(found), found["description"], "discovered", found.get("kind") or "",
        {"examples": n, "accuracy": accuracy[0]}, {"examples": n, "accuracy": accuracy[1]}, counts,
    )  # fmt: skip
    row.update(
        {
            "d": half.get("delta", row["d"]),
            "ci": half.get("interval") or row["ci"],
            "p": half.get("p_value", row["p"]),
            "status": found["status"],
            "halves": {key: found[key] for key in ("discovery", "confirmation")},
            "cls": title(f"label={found['class']}", names) if isinstance(found.get("class"), int) else None,
        }
    )
    return row


def page_data(run, summary: dict, changed: dict, discovered: dict, numbers: dict | None = None, history=None) -> dict:
    """Everything the page draws, JSON-ready: rows, confusion cells, changed examples with images, the time series."""
    numbers = numbers or numbers_from_summary(summary)
    names = summary["eval_data"].get("class_names")
    classes = num_classes_of(summary["eval_data"])
    rows = slice_rows(summary, numbers, discovered)
    features = tuple(summary.get("feature_slices") or {})
    pattern = str(run.resolve(changed["pattern"])) if changed.get("pattern") else ""
    indices = [e["index"] for e in changed["examples"]]
    values = slices_examples.feature_values(pattern, features, indices) if features and indices else {}
    by_slice = slices_examples.members_of_changed(changed, summary, discovered, values)
    extra = {
        slices_examples.discovered_id(found): [e["index"] for e in found.get("both_right_examples", [])]
        for found in discovered.get("slices", [])
    }
    wanted = slices_examples.candidate_indices(by_slice, extra)
    images = {}
    if wanted:
        spec = recorded_spec(summary["eval_data"], str(run.analysis_dir))
        images = slices_examples.example_images(pattern, spec, wanted)
    shown = slices_examples.choose_shown(by_slice, extra, {i: len(b64) for i, b64 in images.items()})
    counts = {sid: {kind: sum(e["change"] == kind for e in examples) for kind in slices_examples.CHANGES} for sid, examples in by_slice.items()}
    used = sorted({i for kinds in shown.values() for listed in kinds.values() for i in listed})
    by_index = {e["index"]: e for e in changed["examples"]}
    labels = {e["index"]: e["label"] for found in discovered.get("slices", []) for e in found.get("both_right_examples", [])}
    examples = {}
    for index in used:
        example = by_index.get(index)
        if example is None:  # a member both models get right
            examples[str(index)] = [labels[index], "both_right", labels[index], None, labels[index], None, images[index]]
            continue
        base, cand = example["baseline"], example["candidate"]
        examples[str(index)] = [
            example["label"], example["change"], base["class"], base.get("confidence"),
            cand["class"], cand.get("confidence"), images[index],
        ]  # fmt: skip
    spec = summary["eval_data"].get("data_spec") or {}
    return {
        "title": f"{summary[CANDIDATE]['label']} vs {summary[BASELINE]['label']}",
        "run": str(run.path),
        "labels": {role: summary[role]["label"] for role in ROLES},
        "source": numbers["source"],
        "warnings": list(numbers.get("warnings", [])),
        "examples_total": summary["eval_data"]["examples"],
        "eval_source": summary["eval_data"].get("source"),
        "classes": [title(f"label={c}", names) for c in range(classes)],
        "features": list(features),
        "rows": rows,
        "confusion": numbers["confusion"],
        "changed": {sid: {"shown": shown.get(sid, {}), "counts": counts.get(sid, {})} for sid in by_slice},
        "examples": examples,
        "pixelated": max(int(spec.get("height") or 28), int(spec.get("width") or 28)) <= slices_examples.THUMBNAIL_SIDE,
        "history": history,
    }


def with_numbers(data: dict, summary: dict, discovered: dict, numbers: dict) -> dict:
    """The same page data with the numbers read another way (TFMA's output): its images are not read again."""
    return {
        **data,
        "rows": slice_rows(summary, numbers, discovered),
        "confusion": numbers["confusion"],
        "source": numbers["source"],
        "warnings": list(numbers.get("warnings", [])),
    }
