"""The report's per-class table and chart, readable from 2 to 1,000 classes.

Up to MAX_CLASSES_IN_FULL classes every class is shown, in class order. Beyond,
the table shows overall and the WORST_SHOWN classes with the largest drop first
and folds the rest, and the chart draws only those: 1,000 bars are a grey band
(and took 13 s to draw).
"""

from __future__ import annotations

from evalsuite.formatting import esc_html as esc
from evalsuite.tables import html, per_class_rows, per_class_table, worst_first
from reports.plots import per_class_figure

MAX_CLASSES_IN_FULL = 60  # about as many bars as the chart's widest figure keeps apart
WORST_SHOWN = 30


def shown_slices(summary: dict) -> tuple[list[str] | None, list[str]]:
    """(the slices shown first, None for all in class order; the classes folded away)."""
    ranked = worst_first(summary)
    if len(ranked) <= MAX_CLASSES_IN_FULL:
        return None, []
    return ["overall", *ranked[:WORST_SHOWN]], ranked[WORST_SHOWN:]


def per_class_html(summary: dict) -> str:
    """The per-class table: every class, or overall and the worst classes with the others folded."""
    shown, folded = shown_slices(summary)
    if shown is None:
        return html(per_class_table(summary))
    classes = len(shown) - 1 + len(folded)
    return (
        f"<p><strong>The {len(shown) - 1} classes with the largest drop</strong> (of {classes}; worst first)</p>"
        + html(per_class_table(summary, shown))
        + f"<details><summary>The other {len(folded)} classes</summary>"
        + html(per_class_table(summary, folded, table_id="per-class-rest"))
        + "</details>"
    )


def per_class_chart(summary: dict, base_label: str, cand_label: str, max_drop: float | None) -> tuple[bytes, str]:
    """The chart as PNG, and a caption when it draws only the worst classes ('' when it draws all)."""
    shown, folded = shown_slices(summary)
    figure = per_class_figure(per_class_rows(summary, shown), base_label, cand_label, max_drop)
    if shown is None:
        return figure, ""
    caption = (
        f"The chart shows overall and the {len(shown) - 1} classes with the largest drop, worst first "
        f"(of {len(shown) - 1 + len(folded)}); every class is in the table above."
    )
    return figure, f'<p class="muted">{esc(caption)}</p>'
