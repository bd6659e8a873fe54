"""What a reader sees: one renderer per table, inert text from data, one p-value convention, Markdown that parses
as meant, legible curves and one training time."""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from evalsuite.formatting import ZERO_WIDTH_SPACE, esc
from evalsuite.tables import (
    CHECKS_P,
    PER_CLASS_P,
    checks_table,
    markdown,
    per_class_rows,
    per_class_table,
    verdict_markdown,
)
from evalsuite.tables import html as html_table
from reports.__main__ import main as reports_main

# CommonMark with GitHub's tables and strikethrough: what GitHub parses before its own extras.
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
LIVE = ("link_open", "image", "em_open", "strong_open", "s_open", "heading_open", "code_inline", "html_inline",
        "html_block", "blockquote_open", "fence", "code_block", "bullet_list_open", "ordered_list_open")  # fmt: skip
HOSTILE = [
    "[click](https://evil.example/x)",
    "![pixel](https://evil.example/p.png)",
    "@octocat and @github/security",
    "*bold* _it_ **strong** ~~gone~~ ~x~",
    "# heading",
    "<img src=x onerror=alert(1)><b>b</b>",
    "a | b || c",
    "`code` and ``more``",
    "one\nline\r\nsplit\rhere",
    "https://evil.example and www.evil.example and me@evil.example",
    "\\*escaped\\* &amp; &#42; $x^2$",
    "<https://evil.example>",
]


def inline_tokens(text: str) -> list:
    tokens = []
    for token in PARSER.parse(text):
        tokens.append(token)
        tokens.extend(token.children or [])
    return tokens


def rendered_text(text: str) -> str:
    """What a reader sees of `text` once rendered: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", PARSER.render(text))).strip()


@pytest.mark.parametrize("text", HOSTILE)
def test_esc_leaves_nothing_live_and_reads_the_same(text):
    escaped = esc(text)
    assert "\n" not in escaped and "\r" not in escaped
    # In running text and inside a table cell alike.
    for document in (f"Model {escaped} here.", f"| a | b |\n|---|---|\n| {escaped} | x |"):
        kinds = {token.type for token in inline_tokens(document)}
        assert not kinds & set(LIVE), (text, kinds)
    cell = PARSER.parse(f"| a | b |\n|---|---|\n| {escaped} | x |")
    assert [t.type for t in cell].count("td_open") == 2  # the row keeps its two cells
    seen = rendered_text(escaped).replace(ZERO_WIDTH_SPACE, "").replace("\u200b", "")
    assert seen == re.sub(r"\r\n|\r|\n", " ", text).strip()


def test_esc_breaks_what_github_links_by_itself():
    escaped = html.unescape(esc(HOSTILE[2] + " " + HOSTILE[9]))
    # GitHub turns @name, bare addresses, www. and mail addresses into links after parsing.
    assert not re.search(r"@\w", escaped) and "://" not in escaped and not re.search(r"\bwww\.", escaped)


def _hostile_summary(summary: dict) -> dict:
    hostile = copy.deepcopy(summary)
    hostile["eval_data"]["class_names"] = [HOSTILE[i % len(HOSTILE)] for i in range(10)]
    hostile["candidate"]["label"] = "evil|<script>alert(1)</script>"
    hostile["baseline"]["label"] = "[base](https://evil.example)"
    return hostile


def _summary(run: Path) -> dict:
    return json.loads((run / "analysis" / "summary.json").read_text())


def _verdict(run: Path) -> dict:
    return json.loads((run / "gate" / "verdict.json").read_text())


def test_each_table_renders_hostile_names_inert_in_markdown_and_html(tiny_run):
    summary = _hostile_summary(_summary(tiny_run))
    verdict = copy.deepcopy(_verdict(tiny_run))
    for check in verdict["checks"]:
        check["title"] = HOSTILE[len(check["title"]) % len(HOSTILE)]
    for table in (per_class_table(summary), checks_table(verdict)):
        text = markdown(table)
        tokens = PARSER.parse(text)
        kinds = {t.type for t in inline_tokens(text)}
        assert not kinds & (set(LIVE) - {"strong_open"}), kinds  # **FAIL** is ours
        rows = [t for t in tokens if t.type == "tr_open"]
        cells = [t for t in tokens if t.type in ("td_open", "th_open")]
        assert len(rows) == len(table.rows) + 1 and len(cells) == len(rows) * len(table.columns)
        page = html_table(table)
        assert "<script" not in page and "<b>" not in page and "<img" not in page and "href" not in page
        assert page.count("<tr>") == len(table.rows) + 1


def test_blocks_are_separated_so_a_warning_quotes_only_itself():
    verdict = {
        "passed": True,
        "candidate": {"label": "epochs-6"},
        "baseline": {"label": "epochs-3"},
        "eval_examples": 1000,
        "rules": {"source": "gate.toml"},
        "warnings": ["2 checks inconclusive", "the baseline is > 30 days old"],
        "notes": ["a note"],
        "checks": [
            {
                "rule": "churn",
                "slice": "overall",
                "title": "overall",
                "baseline": None,
                "candidate": 0.01,
                "delta": None,
                "threshold": "newly wrong rate <= 0.1",
                "status": "pass",
                "passed": True,
                "message": "",
            },
        ],
    }
    for checks in ("table", "failed"):
        text = verdict_markdown(verdict, checks=checks)
        assert_blocks_separated(text)
        quotes = [t for t in PARSER.parse(text) if t.type == "blockquote_open"]
        assert len(quotes) == 2
        quoted = re.findall(r"<blockquote>(.*?)</blockquote>", PARSER.render(text), re.S)
        assert all("checks passed" not in q and "Note" not in q for q in quoted)
        assert len(quoted) == 2 and "inconclusive" in quoted[0] and "30 days" in quoted[1]


def assert_blocks_separated(text: str) -> None:
    """GitHub joins a line to the quote, table or list above it unless a blank line comes between."""
    lines = text.splitlines()
    for before, after in zip(lines, lines[1:]):
        if before.startswith(">"):
            assert after.startswith(">") or not after.strip(), (before, after)
        if before.startswith("|"):
            assert after.startswith("|") or not after.strip(), (before, after)
        if after.startswith("|") and not before.startswith("|"):
            assert not before.strip() or before.startswith("<!--"), (before, after)
        if before.startswith("#"):
            assert not after.strip(), (before, after)


def test_the_comment_parses_as_meant_and_has_no_dead_link(run_copy, capsys):
    assert reports_main(["comment", "--run-dir", str(run_copy)]) == 0
    text = capsys.readouterr().out
    assert_blocks_separated(text)
    assert "](" not in text and "ARTIFACT_URL" not in text and "link_open" not in {t.type for t in inline_tokens(text)}
    assert "report, verdict and JUnit are in the run folder" in text

    url = "https://ci.example/run/1?a=1&copy=2 <x>) [y]"
    assert reports_main(["comment", "--run-dir", str(run_copy), "--artifact-url", url]) == 0
    text = capsys.readouterr().out
    links = [t for t in inline_tokens(text) if t.type == "link_open"]
    assert len(links) == 1 and links[0].attrs["href"] == "https://ci.example/run/1?a=1&copy=2%20%3Cx%3E%29%20%5By%5D"


def test_every_output_shows_the_p_value_its_rule_uses(tiny_run):
    """Per digit the one-sided 'worse' p of the drop rule, overall the 'better' p of the improvement rule,
    the same numbers the verdict records, under a header that says so, everywhere."""
    verdict, summary = _verdict(tiny_run), _summary(tiny_run)
    rows = {row["slice"]: row for row in per_class_rows(summary)}
    judged = {
        check["slice"]: check["p_value"]
        for check in verdict["checks"]
        if check["rule"] in ("per-class drop", "overall improvement")
    }
    assert set(judged) == set(rows) and all(rows[sid]["p_value"] == p for sid, p in judged.items())

    report = (tiny_run / "report" / "summary.md").read_text()
    page = (tiny_run / "report" / "index.html").read_text()
    gate = (tiny_run / "gate" / "summary.md").read_text()
    texts = {"report summary": report, "report page": page, "tensorboard": _tensorboard_table(tiny_run)}
    for name, text in texts.items():
        assert html.escape(PER_CLASS_P) in text or PER_CLASS_P in text, name
        assert "two-sided" not in text, name
    assert CHECKS_P in gate and CHECKS_P in report and html.escape(CHECKS_P) in page
    for row in rows.values():
        p = f"{row['p_value']:.4f}" if row["p_value"] >= 1e-4 else "&lt;0.0001"
        line = next(line for line in report.splitlines() if line.startswith(f"| {esc(row['title'])} |"))
        assert f"| {p} |" in line, line


def test_the_comment_shows_the_same_table(run_copy, capsys):
    assert reports_main(["comment", "--run-dir", str(run_copy)]) == 0
    comment = capsys.readouterr().out
    table = markdown(per_class_table(_summary(run_copy)))
    assert table in comment and table in (run_copy / "report" / "summary.md").read_text()


def _tensorboard_table(run: Path) -> str:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    folder = next(run.glob("logs/*/tfma"))
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    (event,) = accumulator.Tensors("tfma/per_class_accuracy")
    return tensor_util.make_ndarray(event.tensor_proto).item().decode()


def test_the_training_curves_keep_their_legend_clear_of_curves_and_labels(tiny_run):
    from reports.curves import read_curves
    from reports.plots import curves_plot

    runs = json.loads((tiny_run / "manifest.json").read_text())["stages"]["training"]["runs"]
    figure = curves_plot({name: read_curves(tiny_run / info["logs"]) for name, info in runs.items()})
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (legend,) = figure.legends
    box = legend.get_window_extent(renderer)
    labels = [text for axis in figure.axes for text in axis.texts]
    assert {text.get_text() for text in labels} == set(runs)
    for item in [*figure.axes, *labels, *(axis.xaxis.label for axis in figure.axes)]:
        assert not box.overlaps(item.get_window_extent(renderer)), item
    for axis in figure.axes:
        inside = axis.get_window_extent(renderer)
        for text in axis.texts:
            assert text.get_window_extent(renderer).y0 >= inside.y1 - 1  # named above the plot, not on it


def test_the_report_gives_one_training_time_and_says_what_it_covers(tiny_run):
    from reports.html_report import stage_times

    manifest = json.loads((tiny_run / "manifest.json").read_text())
    times = dict(stage_times(manifest))
    assert "time: data" not in times
    assert times["time: training"].startswith(f"{manifest['stages']['training']['seconds']:.1f}s, the whole stage")
    assert "loading the data" in times["time: training"] and "epochs-2" in times["time: training"]
    page = (tiny_run / "report" / "index.html").read_text()
    assert page.count("time: training") == 1 and "the whole stage" in page
