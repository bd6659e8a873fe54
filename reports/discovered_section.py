"""The report's "Where it got worse": each slice discovery kept, its counts on both halves, and its images.

Beside a slice's newly wrong images stand a few of its members both models get
right, so the reader sees what the slice is, not only what fails in it.
"""

from __future__ import annotations

import base64

from evalsuite.data.class_names import title
from evalsuite.formatting import esc_html as esc
from evalsuite.run.contract import NEWLY_RIGHT, NEWLY_WRONG, class_slice

SHOWN = 8  # images per row


def discovered_images(run, changed: dict, discovered: dict, summary: dict) -> dict[str, dict[str, bytes]]:
    """Per kept slice, a strip of its newly wrong images and one of members both models get right (PNG)."""
    from evalsuite.data.spec import recorded_spec
    from reports.tfrecord import read_images  # without TensorFlow

    slices = discovered.get("slices", [])
    if not slices:
        return {}
    names = summary["eval_data"].get("class_names")
    wrong_by_index = {e["index"]: e for e in changed["examples"] if e["change"] == NEWLY_WRONG}
    chosen = {}
    for found in slices:
        members = found["members"]
        wrong = [wrong_by_index[i] for i in members if i in wrong_by_index][:SHOWN]
        chosen[found["id"]] = (wrong, found.get("both_right_examples", [])[:SHOWN])
    indices = sorted({e["index"] for wrong, right in chosen.values() for e in wrong + right})
    spec = recorded_spec(summary["eval_data"], str(run.analysis_dir))
    images = read_images(str(run.resolve(changed["pattern"])), spec, indices)
    strips = {}
    for sid, (wrong, right) in chosen.items():
        strips[sid] = {}
        if wrong:
            captions = [
                f"{_short(title(class_slice(e['label']), names))}\n→ {_short(title(class_slice(e['candidate']['class']), names))}"
                for e in wrong
            ]
            strips[sid]["wrong"] = strip_figure([images[e["index"]] for e in wrong], captions, "#b3261e")
        if right:
            captions = [_short(title(class_slice(e["label"]), names)) for e in right]
            strips[sid]["right"] = strip_figure([images[e["index"]] for e in right], captions, "#1e7d34")
    return strips


def _short(text: str, width: int = 10) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def strip_figure(images: list, captions: list[str], colour: str) -> bytes:
    """One row of images with a caption above each, drawn as one mosaic."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    height, width = images[0].shape[:2]
    inch = 0.84 / max(height, width)
    pitch_x, pitch_y, top = round(1.0 / inch), round(1.25 / inch), round(0.32 / inch)
    mosaic = np.zeros((pitch_y, pitch_x * len(images), 4))
    figure = plt.figure(figsize=(pitch_x * len(images) * inch, pitch_y * inch))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.axis("off")
    for column, (image, caption) in enumerate(zip(images, captions)):
        left = column * pitch_x + (pitch_x - width) // 2
        pixels = image.astype(float) / 255.0
        if pixels.ndim == 2 or pixels.shape[-1] == 1:
            pixels = np.repeat(pixels.reshape(height, width, 1), 3, axis=2)
        mosaic[top : top + height, left : left + width, :3] = pixels
        mosaic[top : top + height, left : left + width, 3] = 1.0
        axis.text(left + width / 2, top - 0.04 / inch, caption, ha="center", va="bottom", fontsize=6.5, color=colour)
    axis.imshow(mosaic, extent=(0, mosaic.shape[1], mosaic.shape[0], 0), interpolation="nearest")
    axis.set_xlim(0, mosaic.shape[1])
    axis.set_ylim(mosaic.shape[0], 0)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def discovered_html(discovered: dict, strips: dict) -> str:
    out = ['<h2 id="where-it-got-worse">Where it got worse</h2>']
    if discovered.get("skipped"):
        return out[0] + f"<p>{esc(discovered['skipped'])}.</p>"
    halves, candidates = discovered["halves"], discovered["candidates"]
    kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(candidates["by_kind"].items()))
    out.append(
        f'<p class="muted">Slices no one named, found on {halves["discovery"]:,} examples and confirmed on the other '
        f"{halves['confirmation']:,} (a seeded split by class): {candidates['total']:,} candidates ({kinds}); "
        f"{esc(discovered.get('representation', ''))}. A slice is <b>regressed</b> when its confirmation half shows "
        f"the drop (one-sided McNemar mid-p, Holm across the kept slices, alpha {discovered['alpha']:g}) and the "
        f"drop exceeds {discovered['tolerance']:g}.</p>"
    )
    if not discovered["slices"]:
        out.append("<p>No slice looked worse on the discovery half.</p>")
        return "".join(out)
    for found in discovered["slices"]:
        first, second = found["discovery"], found["confirmation"]
        status = found["status"]
        css = "bad" if status == "regressed" else "muted"
        out.append(f'<h3>{esc(found["description"])} <span class="{css}">{esc(status)}</span></h3>')
        out.append(
            "<table><tr><th class=l>half</th><th>examples</th><th>newly wrong</th><th>newly right</th>"
            "<th>delta</th><th>95% CI</th><th>p (worse)</th></tr>"
            + "".join(
                f"<tr><td class=l>{name}</td><td>{c['examples']}</td><td>{c[NEWLY_WRONG]}</td><td>{c[NEWLY_RIGHT]}</td>"
                f"<td>{c['delta']:+.4f}</td><td>{c['interval'][0]:+.4f}..{c['interval'][1]:+.4f}</td>"
                f"<td>{c['p_value']:.2g}</td></tr>"
                for name, c in (("discovery", first), ("confirmation", second))
            )
            + "</table>"
        )
        images = strips.get(found["id"], {})
        if "wrong" in images:
            out.append('<p class="muted">Newly wrong in this slice (true class, then the candidate\'s answer):</p>')
            out.append(_img(images["wrong"], "newly wrong in " + found["description"]))
        if "right" in images:
            out.append('<p class="muted">Members both models get right:</p>')
            out.append(_img(images["right"], "members of " + found["description"]))
    return "".join(out)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
