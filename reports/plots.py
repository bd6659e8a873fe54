"""Matplotlib figures for the report, returned as PNG bytes (embedded, no network)."""

from __future__ import annotations

import functools
import io

import matplotlib

from evalsuite.run.contract import class_slice, seed_of

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

BASELINE_COLOR, CANDIDATE_COLOR, DROP_COLOR = "#8c96a8", "#1f6fd1", "#d1421f"


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
    return _png(per_class_plot(rows, base_label, cand_label, max_drop))


@plain_text
def per_class_plot(rows: list[dict], base_label: str, cand_label: str, max_drop: float | None):
    """Accuracy of both models per slice, and the delta with its paired interval, as a matplotlib figure.

    Each panel's legend names its bars, intervals and lines and sits outside it, on the right: it never
    hides a bar or an interval, however few the classes. The delta panel's range holds every interval whole.
    """
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
    _legend_outside(top, *top.get_legend_handles_labels())
    top.grid(axis="y", alpha=0.3)
    deltas = np.array([row["delta"] or 0 for row in rows], dtype=float)
    colors = [CANDIDATE_COLOR if d >= 0 else DROP_COLOR for d in deltas]
    bottom.bar(x, deltas, 0.6, color=colors)
    bottom.axhline(0, color="black", linewidth=0.8)
    handles = [Patch(color=CANDIDATE_COLOR, label="gain")] if any(deltas >= 0) else []
    handles += [Patch(color=DROP_COLOR, label="drop")] if any(deltas < 0) else []
    shown = list(deltas) + [0.0]
    intervals = all(row["interval"] for row in rows)
    if intervals:
        # Drawn from each interval's own ends, so an interval is whole even where it leaves out its delta.
        lows, highs = (np.array([row["interval"][end] for row in rows], dtype=float) for end in (0, 1))
        bottom.errorbar(x, (lows + highs) / 2, yerr=(highs - lows) / 2, fmt="none", ecolor="black", capsize=3, lw=1)
        handles.append(
            Line2D([], [], color="black", marker="_", markersize=8, linewidth=1, label="95% interval of the delta")
        )
        shown += [*lows, *highs]
    if max_drop is not None:
        bottom.axhline(-max_drop, color=DROP_COLOR, linestyle="--", linewidth=0.8)
        allowed = f"allowed drop ({max_drop:g})"
        handles.append(Line2D([], [], color=DROP_COLOR, linestyle="--", linewidth=0.8, label=allowed))
        shown.append(-max_drop)
    low, high = min(shown), max(shown)
    margin = 0.08 * (high - low) or 0.01
    bottom.set_ylim(low - margin, high + margin)
    _legend_outside(bottom, handles, [handle.get_label() for handle in handles])
    bottom.set_ylabel("delta (95% CI)" if intervals else "delta")
    step = max(1, -(-len(rows) // 120))  # at most about 120 labels
    rotation = 30 if max(len(label) for label in labels) > 3 else 0
    bottom.set_xticks(x[::step], labels[::step], rotation=90 if len(rows) > 40 else rotation)
    bottom.set_xlabel("slice (true class)")
    bottom.grid(axis="y", alpha=0.3)
    return figure


def _legend_outside(axis, handles, labels) -> None:
    """The legend right of the axes, its top at the axes' top: clear of every bar, interval and line."""
    axis.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)


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

    `images` maps each example's index to its image (an array of all images serves too). Every image is
    placed in one mosaic, drawn once (an axes per image took most of the report's drawing time).
    """
    from evalsuite.data.class_names import title

    rows: dict[int, list[dict]] = {}
    for example in examples:
        rows.setdefault(example["label"], []).append(example)
    columns = max(len(items) for items in rows.values())
    height, width = images[examples[0]["index"]].shape[:2]  # every image has the run's data spec
    # Inches per image pixel: each image fits a 0.84-inch square in a cell 1 inch wide and 1.25 high, the
    # two title lines above it, as the grid of axes spaced them. Coordinates below are mosaic pixels.
    inch = 0.84 / max(height, width)
    pitch_x, pitch_y, image_top = round(1.0 / inch), round(1.25 / inch), round(0.32 / inch)
    mosaic = np.zeros((pitch_y * len(rows), pitch_x * columns, 4))  # transparent between images
    figure = plt.figure(figsize=(pitch_x * columns * inch, pitch_y * len(rows) * inch))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.axis("off")
    for row, label in enumerate(sorted(rows)):
        top = row * pitch_y + image_top
        for column, example in enumerate(rows[label]):
            left = column * pitch_x + (pitch_x - width) // 2
            mosaic[top : top + height, left : left + width] = _rgba(images[example["index"]])
            base, cand = example["baseline"], example["candidate"]
            base_name = _short(title(class_slice(base["class"]), names))
            cand_name = _short(title(class_slice(cand["class"]), names))
            axis.text(
                left + width / 2,
                top - 0.04 / inch,
                f"{base_name} {base['confidence']:.2f}\n→ {cand_name} {cand['confidence']:.2f}",
                ha="center",
                va="bottom",
                fontsize=6.5,
                color="#1e7d34" if example["change"] == "newly_right" else "#b3261e",
            )
        row_title = _short(title(class_slice(label), names), 12)
        axis.text(-0.1 / inch, top + height / 2, row_title, ha="right", va="center", fontsize=8)
    extent = (0, mosaic.shape[1], mosaic.shape[0], 0)
    axis.imshow(mosaic, interpolation="nearest", extent=extent)
    axis.set_xlim(0, mosaic.shape[1])
    axis.set_ylim(mosaic.shape[0], 0)
    return _png(figure)


def _rgba(image: np.ndarray) -> np.ndarray:
    """An image's colours as imshow shows it alone: grey scaled to its own range in gray_r, colour as it is."""
    if image.ndim == 2:
        low, high = float(image.min()), float(image.max())
        scaled = (image - low) / (high - low) if high > low else np.zeros(image.shape)
        return matplotlib.colormaps["gray_r"](scaled)
    colours = image / 255.0
    return colours if image.shape[2] == 4 else np.dstack([colours, np.ones(image.shape[:2])])


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
        color = DROP_COLOR if row["status"] == "fail" else CANDIDATE_COLOR
        top.errorbar(
            index + 0.3,
            row["delta"],
            yerr=[[row["delta"] - low], [high - row["delta"]]],
            fmt="D",
            color=color,
            capsize=3,
        )
    top.axhline(0, color="black", linewidth=0.8)
    handles = [
        Line2D([], [], color=BASELINE_COLOR, marker="o", markersize=4, linestyle="none", label="one seed's delta"),
        Line2D([], [], color=CANDIDATE_COLOR, marker="D", markersize=5, label="mean, 95% interval (red: fails)"),
    ]
    if max_drop is not None:
        top.axhline(-max_drop, color=DROP_COLOR, linestyle="--", linewidth=0.8)
        allowed = f"allowed drop ({max_drop:g})"
        handles.append(Line2D([], [], color=DROP_COLOR, linestyle="--", linewidth=0.8, label=allowed))
    _legend_outside(top, handles, [handle.get_label() for handle in handles])
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
