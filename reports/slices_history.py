"""Accuracy across blessed models, as TFMA's `render_time_series` shows a metric across evaluations.

Each entry of a registry (evalsuite/registry.py) records its candidate's
accuracy per slice on the data it was judged on; in blessing order (oldest
first) they are the series' first points, and this run's candidate is the
last. Slices are matched by the name the record keys them with (`overall`,
`digit 3`, `pen=red`); a point judged on other evaluation data than this run's
is marked, since its numbers are not on the same examples.
"""

from __future__ import annotations

import math
from pathlib import Path

from evalsuite import registry
from evalsuite.data.class_names import title
from evalsuite.run.contract import CANDIDATE

THIS_RUN = "this run"


def registry_history(folder: Path, summary: dict, warn=None) -> dict:
    """{"folder", "points": [...], "series": [[key, name], ...]}: one point per blessed entry, then this run.

    A registry folder that does not exist, or whose entries all fail to verify, is an InputError
    (evalsuite/registry.py); a damaged entry among good ones is skipped with a warning.
    """
    entries = list(reversed(registry.entries(folder, warn=warn)))  # blessing order: oldest first
    names = summary["eval_data"].get("class_names")
    models = summary["models"][CANDIDATE]
    ordered = [sid for sid in summary.get("slices") or [] if sid in models]
    ordered += [sid for sids in (summary.get("feature_slices") or {}).values() for sid in sids if sid in models]
    ordered += sorted(set(models) - set(ordered))
    current = {title(sid, names): models[sid].get("accuracy") for sid in ordered}
    keys = {title(sid, names): sid for sid in ordered}
    fingerprint = summary["eval_data"].get("fingerprint")
    points = []
    for step, entry in enumerate(entries, start=1):
        record = entry.record
        data = record.get("eval_data") if isinstance(record.get("eval_data"), dict) else {}
        points.append(
            {
                "step": step,
                "entry": entry.name,
                "blessed_at": record.get("blessed_at"),
                "model": record.get("candidate") if isinstance(record.get("candidate"), str) else None,
                "commit": (record.get("git_commit") or "")[:10] or None,
                "same_data": data.get("fingerprint") == fingerprint,
                "examples": data.get("examples"),
                "accuracy": _accuracies(record.get("accuracy")),
            }
        )
    points.append(
        {
            "step": len(entries) + 1,
            "entry": THIS_RUN,
            "blessed_at": None,
            "model": summary[CANDIDATE]["label"],
            "commit": None,
            "same_data": True,
            "examples": summary["eval_data"].get("examples"),
            "accuracy": {name: value for name, value in current.items() if value is not None},
        }
    )
    # This run's slices in its own order first, then any a blessed entry had that this run has not.
    order = list(current)
    order += sorted({name for point in points for name in point["accuracy"]} - set(order))
    return {
        "folder": str(folder),
        "points": points,
        "series": [[keys.get(name, name), name] for name in order],
    }


def _accuracies(recorded) -> dict[str, float]:
    """A record's accuracies, only those that are numbers in 0..1 (a record of an older format may have none)."""
    if not isinstance(recorded, dict):
        return {}
    return {
        str(name): float(value)
        for name, value in recorded.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1
    }
