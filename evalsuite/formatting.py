"""How numbers and text from data appear in Markdown and HTML, the same in every stage."""

from __future__ import annotations

import html
import re

ZERO_WIDTH_SPACE = "&#8203;"

# One pass, so nothing is escaped twice. Every character Markdown (GitHub's included) reads
# as structure becomes a numeric character reference, which CommonMark shows as the character
# itself and never parses as markup; HTML's own characters become entities; a line break
# (which would end a table row, a list item or a quote) becomes a space.
_MARKDOWN = {
    **{ord(char): f"&#{ord(char)};" for char in "\\`*_~[]#|$"},
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#39;",
    # A zero-width space after "@" keeps GitHub from making a mention (or a mail link) of it.
    ord("@"): "@" + ZERO_WIDTH_SPACE,
    **{code: " " for code in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029)},
}
# GitHub links bare addresses ("https://...", "www.") by itself: break them the same way.
_AUTOLINKS = re.compile(r"(:)(//)|(?<![0-9A-Za-z])(www)(\.)", re.IGNORECASE)


def esc(text) -> str:
    """Text from data or config as inert Markdown: it reads the same and never turns into markup.

    Links, images, mentions, emphasis, headings, HTML, table pipes, code spans and
    line breaks all come out as plain characters, in a table cell or in running text.
    """
    escaped = str(text).replace("\r\n", "\n").translate(_MARKDOWN)
    return _AUTOLINKS.sub(lambda m: f"{m[1] or m[3]}{ZERO_WIDTH_SPACE}{m[2] or m[4]}", escaped)


def code(text) -> str:
    """`text` as a code span when it is plain (a model name like epochs-6), else escaped running text."""
    escaped = esc(text)
    return f"`{escaped}`" if escaped == str(text) and escaped else escaped


def esc_html(text) -> str:
    """Text from data or config inside an HTML page (element text or a quoted attribute)."""
    return html.escape(str(text), quote=True)


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


def count_text(value) -> str:
    return "-" if value is None else str(value)
