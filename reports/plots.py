"""Matplotlib figures for the report, returned as PNG bytes (embedded, no network)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

BASELINE_COLOR, CANDIDATE_COLOR = "#8c96a8", "#1f6fd1"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def per_digit_figure(rows: list[dict], base_label: str, cand_label: str, max_drop: float | None) -> bytes:
    """Accuracy of both models per slice, and the delta with its interval."""
    labels = [row["slice"].replace("label=", "") for row in rows]
    x = np.arange(len(rows))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    width = 0.38
    top.bar(x - width / 2, [row["baseline"] or 0 for row in rows], width, label=base_label, color=BASELINE_COLOR)
    top.bar(x + width / 2, [row["candidate"] or 0 for row in rows], width, label=cand_label, color=CANDIDATE_COLOR)
    low = min(min(row["baseline"] or 0, row["candidate"] or 0) for row in rows)
    top.set_ylim(max(0.0, low - 0.05), 1.0)
    top.set_ylabel("accuracy")
    top.legend(loc="lower right")
    top.grid(axis="y", alpha=0.3)
    deltas = np.array([row["delta"] or 0 for row in rows])
    errors = None
    if all(row["interval"] for row in rows):
        errors = np.array([[d - row["interval"][0], row["interval"][1] - d] for d, row in zip(deltas, rows)]).T
        errors = np.clip(errors, 0, None)
    colors = [CANDIDATE_COLOR if d >= 0 else "#d1421f" for d in deltas]
    bottom.bar(x, deltas, 0.6, yerr=errors, capsize=3, color=colors)
    bottom.axhline(0, color="black", linewidth=0.8)
    if max_drop is not None:
        bottom.axhline(-max_drop, color="#d1421f", linestyle="--", linewidth=0.8, label=f"allowed drop ({max_drop:g})")
        bottom.legend(loc="lower right")
    bottom.set_ylabel("delta (95% CI)" if errors is not None else "delta")
    bottom.set_xticks(x, labels)
    bottom.set_xlabel("slice (true digit)")
    bottom.grid(axis="y", alpha=0.3)
    return _png(figure)


def confusion_figure(matrices: dict[str, list[list[int]]]) -> bytes:
    """Confusion matrices side by side: rows are true digits, columns predictions."""
    figure, axes = plt.subplots(1, len(matrices), figsize=(5.2 * len(matrices), 4.8))
    axes = np.atleast_1d(axes)
    for axis, (title, matrix) in zip(axes, matrices.items()):
        counts = np.array(matrix)
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(counts):
            if count:
                axis.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
        axis.set_title(title)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_xticks(range(10))
        axis.set_yticks(range(10))
    return _png(figure)


def curves_figure(curves: dict[str, dict]) -> bytes:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), per run."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (run, splits) in enumerate(curves.items()):
        color = palette[index % len(palette)]
        for split, style in (("train", "-"), ("validation", "--")):
            for axis, tag in zip(axes, ("epoch_loss", "epoch_accuracy")):
                points = splits.get(split, {}).get(tag, [])
                if points:
                    epochs, values = zip(*points)
                    axis.plot(
                        [e + 1 for e in epochs],
                        values,
                        style,
                        marker="o",
                        markersize=3,
                        color=color,
                        label=f"{run} {split}",
                    )
    for axis, name in zip(axes, ("loss", "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    return _png(figure)
