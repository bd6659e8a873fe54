"""Matplotlib figures for the report, returned as PNG bytes (embedded, no network)."""

from __future__ import annotations

import functools
import io

import matplotlib

from evalsuite.contract import class_slice, seed_of

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

BASELINE_COLOR, CANDIDATE_COLOR = "#8c96a8", "#1f6fd1"


def plain_text(draw):
    """Draw with every string shown as written: a class or model name holding $...$ is text, not mathtext
    (which would render it wrongly, or fail and lose the report after the gate has judged)."""

    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


@plain_text
def per_class_figure(rows: list[dict], base_label: str, cand_label: str, max_drop: float | None) -> bytes:
    """Accuracy of both models per slice, and the delta with its paired interval."""
    labels = [row["title"].replace("digit ", "") for row in rows]
    x = np.arange(len(rows))
    width_inches = min(max(9, 0.22 * len(rows)), 30)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(width_inches, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
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
    step = max(1, -(-len(rows) // 120))  # at most about 120 labels
    rotation = 30 if max(len(label) for label in labels) > 3 else 0
    bottom.set_xticks(x[::step], labels[::step], rotation=90 if len(rows) > 40 else rotation)
    bottom.set_xlabel("slice (true class)")
    bottom.grid(axis="y", alpha=0.3)
    return _png(figure)


@plain_text
def confusion_figure(matrices: dict[str, list[list[int]]], names: list[str] | None = None) -> bytes:
    """Confusion matrices side by side: rows are true classes, columns predictions.

    Counts are written in the cells up to 20 classes; beyond, the colour (the
    share of each true class) carries it and ticks thin out to stay readable.
    """
    classes = len(next(iter(matrices.values())))
    side = min(4.8 + max(0, classes - 10) * 0.12, 12)
    figure, axes = plt.subplots(1, len(matrices), figsize=((side + 0.4) * len(matrices), side))
    axes = np.atleast_1d(axes)
    for axis, (title, matrix) in zip(axes, matrices.items()):
        counts = np.array(matrix)
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        # Beyond 20 classes no count is written: skip the walk over K^2 cells (3 s at 1,000 classes).
        for (i, j), count in np.ndenumerate(counts) if classes <= 20 else ():
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
        ticks = list(range(0, classes, max(1, -(-classes // 25))))
        labels = [_short(names[t], 12) if names and t < len(names) else str(t) for t in ticks]
        axis.set_xticks(ticks, labels, rotation=90 if names and classes > 2 else 0)
        axis.set_yticks(ticks, labels)
        if classes > 25:
            axis.tick_params(labelsize=6)
    return _png(figure)


def shared_trajectory(curves: dict[str, dict]) -> bool:
    """True when every shorter run's curves are the start of the longest run's (one trajectory, snapshots)."""
    longest = max(curves.values(), key=lambda c: len(c.get("train", {}).get("epoch_loss", [])))
    for splits in curves.values():
        for split, tags in splits.items():
            for tag, points in tags.items():
                if points != longest.get(split, {}).get(tag, [])[: len(points)]:
                    return False
    return True


@plain_text
def curves_figure(curves: dict[str, dict], first_seed: int | None = None) -> bytes:
    return _png(curves_plot(curves, first_seed))


@plain_text
def curves_plot(curves: dict[str, dict], first_seed: int | None = None):
    """Loss and accuracy per epoch, train (solid) and validation (dashed), as a matplotlib figure.

    When the runs share one trajectory (the 3-epoch model is a snapshot of the
    6-epoch run), one line per curve with each snapshot marked; otherwise a
    line per run. The legend sits below both panels, the export labels above them.
    """
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    # A recipe's seeds (--seeds N): one trajectory per seed, each drawn as one line.
    by_seed: dict = {}
    for run, splits in curves.items():
        by_seed.setdefault(seed_of(run), {})[run] = splits
    shared = all(len(group) > 1 and shared_trajectory(group) for group in by_seed.values())
    if shared:
        primary = by_seed.get(None) or next(iter(by_seed.values()))
        lengths = {run: len(c.get("train", {}).get("epoch_loss", [])) for run, c in primary.items()}
        lines = {}
        for seed, group in by_seed.items():
            longest = max(group, key=lambda run: len(group[run].get("train", {}).get("epoch_loss", [])))
            if len(by_seed) == 1:
                lines[f"{' / '.join(group)} (one trajectory)"] = group[longest]
            else:
                lines[f"seed {first_seed if seed is None else seed}"] = group[longest]
    else:
        lines = curves
    for index, (run, splits) in enumerate(lines.items()):
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
                        label=f"{run} {split}" if not shared or len(lines) > 1 else split,
                    )
    if shared:
        # Each export marked on both panels and named above them, clear of the curves and the legend.
        for index, (run, length) in enumerate(sorted(lengths.items(), key=lambda item: item[1])):
            color = palette[(index + 2) % len(palette)]
            for axis in axes:
                axis.axvline(length, color=color, linestyle=":", linewidth=1.2)
                axis.annotate(
                    run,
                    (length, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color=color,
                )
    for axis, name in zip(axes, ("loss", "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    # One legend for both panels, below them: it never hides a curve or a label.
    handles, labels = axes[1].get_legend_handles_labels()
    if handles:
        figure.legend(
            handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 4), fontsize=8,
            frameon=False,
        )  # fmt: skip
    if shared:
        figure.suptitle(
            ("one training trajectory per seed" if len(lines) > 1 else "one training trajectory")
            + "; dotted lines mark where each model was exported",
            fontsize=9,
            y=1.04,
        )
    return figure


@plain_text
def changed_figure(images, examples: list[dict], names) -> bytes:
    """A row of images per class: each with the true class, both predictions and their confidence.

    `images` maps each example's index to its image (an array of all images serves too).
    """
    from evalsuite.class_names import title

    rows: dict[int, list[dict]] = {}
    for example in examples:
        rows.setdefault(example["label"], []).append(example)
    columns = max(len(items) for items in rows.values())
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.25 * columns, 1.55 * len(rows)), squeeze=False)
    colour = images[examples[0]["index"]].ndim == 3
    for axis in axes.flat:
        axis.axis("off")
    for row, label in enumerate(sorted(rows)):
        for column, example in enumerate(rows[label]):
            axis = axes[row][column]
            if colour:
                axis.imshow(images[example["index"]], interpolation="nearest")
            else:
                axis.imshow(images[example["index"]], cmap="gray_r")
            base, cand = example["baseline"], example["candidate"]
            base_name = _short(title(class_slice(base["class"]), names))
            cand_name = _short(title(class_slice(cand["class"]), names))
            axis.set_title(
                f"{base_name} {base['confidence']:.2f}\n→ {cand_name} {cand['confidence']:.2f}",
                fontsize=6.5,
                color="#1e7d34" if example["change"] == "newly_right" else "#b3261e",
            )
        axes[row][0].text(
            -0.15, 0.5, _short(title(class_slice(label), names), 12), transform=axes[row][0].transAxes,
            ha="right", va="center", fontsize=8,
        )  # fmt: skip
    return _png(figure)


def _short(text: str, limit: int = 9) -> str:
    text = text.replace("digit ", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@plain_text
def recipe_figure(checks: list[dict], floor: dict, newly_wrong: dict, max_drop: float | None) -> bytes | None:
    """Per slice, every seed's delta as a dot with the recipe's mean and interval; below, the candidates'
    newly-wrong rate beside the churn floor (what retraining alone breaks)."""
    shown = {}
    for check in checks:  # overall from its improvement check, each class from its drop check
        if check["metric"] == "accuracy" and check.get("per_seed") and check["slice"] not in shown:
            if check["rule"] in ("overall improvement", "per-class drop"):
                shown[check["slice"]] = check
    rows = list(shown.values())
    if not rows:
        return None  # neither the improvement nor the drop rule is on: nothing to draw
    labels = [row["title"].replace("digit ", "") for row in rows]
    x = np.arange(len(rows))
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(min(max(9, 0.3 * len(rows)), 30), 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for index, row in enumerate(rows):
        seeds = row["per_seed"]
        jitter = np.linspace(-0.15, 0.15, len(seeds)) if len(seeds) > 1 else [0.0]
        top.scatter(index + np.asarray(jitter), seeds, s=14, color=BASELINE_COLOR, zorder=3)
        low, high = row["interval"] or (row["delta"], row["delta"])
        color = "#d1421f" if row["status"] == "fail" else CANDIDATE_COLOR
        top.errorbar(
            index + 0.3,
            row["delta"],
            yerr=[[row["delta"] - low], [high - row["delta"]]],
            fmt="D",
            color=color,
            capsize=3,
        )
    top.axhline(0, color="black", linewidth=0.8)
    if max_drop is not None:
        top.axhline(-max_drop, color="#d1421f", linestyle="--", linewidth=0.8, label=f"allowed drop ({max_drop:g})")
        top.legend(loc="lower right")
    top.set_ylabel("delta: dots per seed,\nmean with 95% CI")
    top.grid(axis="y", alpha=0.3)
    width = 0.38
    sids = [row["slice"] for row in rows]
    bottom.bar(x - width / 2, [newly_wrong.get(s, 0) for s in sids], width, color="#d1421f", label="newly wrong")
    bottom.bar(x + width / 2, [floor.get(s, 0) for s in sids], width, color="#9aa0a6", label="churn floor")
    bottom.set_ylabel("share of examples")
    bottom.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, frameon=False, fontsize=8)
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(x, labels, rotation=30 if max(len(label) for label in labels) > 3 else 0)
    bottom.set_xlabel("slice (true class)")
    return _png(figure)
