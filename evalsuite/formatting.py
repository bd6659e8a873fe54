"""How numbers and text from data appear in Markdown, the same in every stage."""

from __future__ import annotations

import html


def esc(text) -> str:
    """Escape text from data or config for Markdown rendered as HTML (tables included)."""
    return html.escape(str(text)).replace("|", "&#124;").replace("`", "&#96;")


def fmt(value, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def interval_text(interval) -> str:
    return f"{interval[0]:+.4f} .. {interval[1]:+.4f}" if interval else "-"


def p_value_text(p_value) -> str:
    if p_value is None:
        return "-"
    return "<0.0001" if p_value < 1e-4 else f"{p_value:.4f}"
