"""TFMA's results as TensorBoard summaries, beside each run's training logs.

TensorBoard alone then shows training and evaluation together: per-class
accuracy as scalars at the model's epoch count (so the 3- and 6-epoch runs
line up on one chart), confusion matrices as images, the table as text.
Written without TensorFlow (`reports.event_files`), as tf.summary writes them.
"""

from __future__ import annotations

from pathlib import Path

from evalsuite.run.atomic import atomic_dir
from evalsuite.run.contract import TENSORBOARD_EVAL_RUN
from evalsuite.run.folder import RunDir
from evalsuite.tables import P_NOTE, markdown, per_class_table
from reports import event_files


def write_tfma_summaries(
    run: RunDir, manifest: dict, summary: dict, changed: dict, grids: dict, confusion: dict[str, bytes]
) -> list[Path]:
    """Write logs/<model>/tfma for each analysed model that is one of this run's.

    `grids`: the changed examples' images by kind of change; `confusion`: each model's confusion-matrix
    figure by role (both PNG, drawn once for the report and for TensorBoard).
    """
    runs = manifest.get("stages", {}).get("training", {}).get("runs", {})
    # The report's and the pull request's table, escaped alike (TensorBoard renders Markdown too).
    table = markdown(per_class_table(summary)) + f"\n\n{P_NOTE}."
    written = []
    for role in ("baseline", "candidate"):
        label = summary[role]["label"]
        if label not in runs:
            continue  # a model from elsewhere has no training logs here
        step = int(runs[label]["epochs"])
        final = run.logs_dir(label) / TENSORBOARD_EVAL_RUN
        with atomic_dir(final) as staging, event_files.EventFile(staging) as events:
            for sid, metrics in summary["models"][role].items():
                if metrics.get("accuracy") is not None:
                    description = f"TFMA SparseCategoricalAccuracy on slice {sid}"
                    events.add(event_files.scalar(f"tfma/accuracy/{sid}", metrics["accuracy"], description), step)
                if role == "candidate" and summary["deltas"].get(sid, {}).get("accuracy") is not None:
                    delta = summary["deltas"][sid]["accuracy"]
                    events.add(event_files.scalar(f"tfma/delta_vs_baseline/{sid}", delta), step)
            if role in confusion:
                events.add(event_files.image("tfma/confusion_matrix", confusion[role]), step)
            events.add(event_files.text("tfma/per_class_accuracy", table), step)
            if role == "candidate":
                for change, png in grids.items():
                    events.add(event_files.image(f"tfma/{change}_examples", png), step)
        written.append(final)
    return written


REGISTRY_RUN = "registry"  # TensorBoard's run for the accuracy across blessed models


def write_registry_series(run: RunDir, history: dict) -> Path:
    """logs/registry: each blessed entry's accuracy per slice at step = its place in blessing order, this run last.

    `history` from reports/slices_history.py; the entries are listed as text at the last step, so a step
    names its entry.
    """
    final = run.logs_root / REGISTRY_RUN
    keys = dict((name, key) for key, name in history["series"])
    last = history["points"][-1]["step"]
    lines = ["| step | entry | blessed (UTC) | model | evaluation data |", "|---:|---|---|---|---|"]
    with atomic_dir(final) as staging, event_files.EventFile(staging) as events:
        for point in history["points"]:
            for name, value in point["accuracy"].items():
                description = f"accuracy on {name}, by blessing order (step {point['step']}: {point['entry']})"
                events.add(event_files.scalar(f"registry/accuracy/{keys.get(name, name)}", value, description), point["step"])
            data = "this run's" if point["same_data"] else "other data"
            cells = (point["step"], point["entry"], point["blessed_at"] or "-", point["model"] or "-", data)
            lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |")
        events.add(event_files.text("registry/entries", "\n".join(lines)), last)
    return final
