"""TFMA's results as TensorBoard summaries, beside each run's training logs.

TensorBoard alone then shows training and evaluation together: per-digit
accuracy as scalars at the model's epoch count (so the 3- and 6-epoch runs
line up on one chart), confusion matrices as images, the table as text.
"""

from __future__ import annotations

from pathlib import Path

from evalsuite.atomic import atomic_dir
from evalsuite.contract import TENSORBOARD_EVAL_RUN
from evalsuite.rundir import RunDir
from evalsuite.tables import P_NOTE, markdown, per_class_table
from reports.plots import confusion_figure


def write_tfma_summaries(run: RunDir, manifest: dict, summary: dict, changed: dict, grids: dict) -> list[Path]:
    """Write logs/<model>/tfma for each analysed model that is one of this run's."""
    import tensorflow as tf

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
        with atomic_dir(final) as staging:
            writer = tf.summary.create_file_writer(str(staging))
            with writer.as_default():
                for sid, metrics in summary["models"][role].items():
                    if metrics.get("accuracy") is not None:
                        tf.summary.scalar(
                            f"tfma/accuracy/{sid}",
                            metrics["accuracy"],
                            step=step,
                            description=f"TFMA SparseCategoricalAccuracy on slice {sid}",
                        )
                    if role == "candidate" and summary["deltas"].get(sid, {}).get("accuracy") is not None:
                        tf.summary.scalar(
                            f"tfma/delta_vs_baseline/{sid}", summary["deltas"][sid]["accuracy"], step=step
                        )
                matrix = summary.get("confusion_matrices", {}).get(role, {}).get("overall")
                if matrix:
                    png = confusion_figure({label: matrix}, summary["eval_data"].get("class_names"))
                    image = tf.io.decode_png(png, channels=4)[tf.newaxis]
                    tf.summary.image("tfma/confusion_matrix", image, step=step)
                tf.summary.text("tfma/per_class_accuracy", table, step=step)
                if role == "candidate":
                    for change, png in grids.items():
                        image = tf.io.decode_png(png, channels=4)[tf.newaxis]
                        tf.summary.image(f"tfma/{change}_examples", image, step=step)
            writer.close()
        written.append(final)
    return written
