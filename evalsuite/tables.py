"""Each table a reader sees, defined once and rendered as Markdown or HTML.

A table is data: columns and rows of plain-text cells. `markdown` and `html`
render it and escape every header and cell, so text from data (class names,
model labels, rule sources) never comes out as markup. The gate's summary.md,
the report's summary.md and page, the pull-request comment and TensorBoard's
text summary all draw their tables and verdict from here.

p-values follow the rules: the one-sided McNemar mid-p in the direction the
rule tests (that the candidate is worse on a class, better overall), the same
number the verdict records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evalsuite.data.class_names import title
from evalsuite.formatting import code, count_text, esc, esc_html, fmt, interval_text, p_value_text
from evalsuite.rules import paired_stats
from evalsuite.run.contract import NEWLY_RIGHT, NEWLY_WRONG

PER_CLASS_P = "p (one-sided: worse; overall: better)"
CHECKS_P = "p (one-sided, as the rule tests)"
P_NOTE = (
    "p: one-sided McNemar mid-p in the direction its rule tests: that the candidate is worse "
    "on a class (per-class drop), better overall (overall improvement)"
)
RECIPE_P = "p (one-sided, as the rule tests)"
RECIPE_NOTE = (
    "Recipe: each seed's paired delta and their mean; the interval is Student's t over seeds and examples "
    "(evalsuite/rules/recipe_stats.py). Newly wrong: the candidates' mean newly-wrong rate; churn floor: the share "
    "of examples one seed's baseline (against one blessed model: candidate) gets right and another's wrong, "
    "what retraining alone breaks"
)


@dataclass(frozen=True)
class Cell:
    """Plain text; `css` and `hint` (a tooltip) only show in HTML, `strong` in both."""

    text: str
    css: str = ""
    strong: bool = False
    hint: str = ""


@dataclass(frozen=True)
class Column:
    header: str
    left: bool = False  # text columns align left, numbers right


@dataclass
class Table:
    id: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *cells) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.id}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([cell if isinstance(cell, Cell) else Cell(str(cell)) for cell in cells])


def markdown(table: Table) -> str:
    """GitHub-flavoured Markdown; every header and cell escaped."""

    def cell(item: Cell) -> str:
        return f"**{esc(item.text)}**" if item.strong else esc(item.text)

    lines = [
        "| " + " | ".join(esc(column.header) for column in table.columns) + " |",
        "|" + "|".join("---" if column.left else "---:" for column in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(item) for item in row) + " |" for row in table.rows]
    return "\n".join(lines)


def html(table: Table) -> str:
    """An HTML table with `id`; every header and cell escaped."""

    def attributes(column: Column, css: str = "", hint: str = "") -> str:
        classes = " ".join(name for name in ("l" if column.left else "", css) if name)
        out = f' class="{classes}"' if classes else ""
        return out + (f' title="{esc_html(hint)}"' if hint else "")

    def cell(column: Column, item: Cell) -> str:
        text = f"<strong>{esc_html(item.text)}</strong>" if item.strong else esc_html(item.text)
        return f"<td{attributes(column, item.css, item.hint)}>{text}</td>"

    out = [f"<table id={table.id}><tr>"]
    out += [f"<th{attributes(column)}>{esc_html(column.header)}</th>" for column in table.columns]
    out.append("</tr>")
    for row in table.rows:
        out.append("<tr>" + "".join(cell(column, item) for column, item in zip(table.columns, row)) + "</tr>")
    out.append("</table>")
    return "".join(out)


# --- the per-class table ----------------------------------------------------------------


def rule_p_value(sid: str, newly_right: int | None, newly_wrong: int | None) -> float | None:
    """The p-value the rules use for a slice: better overall, worse on a class (None without counts)."""
    if newly_right is None or newly_wrong is None:
        return None
    if sid == "overall":
        return paired_stats.better_p_value(newly_right, newly_wrong)
    return paired_stats.worse_p_value(newly_right, newly_wrong)


def per_class_rows(summary: dict, slices: list[str] | None = None) -> list[dict]:
    """One row per slice (all, or `slices` in that order): both models' accuracy, the delta, its interval, p and counts."""
    names = summary["eval_data"].get("class_names")
    rows = []
    for sid in summary["slices"] if slices is None else slices:
        base = summary["models"]["baseline"].get(sid, {})
        cand = summary["models"]["candidate"].get(sid, {})
        delta = summary["deltas"].get(sid, {})
        paired = summary.get("paired", {}).get(sid, {})
        rows.append(
            {
                "slice": sid,
                "title": title(sid, names),
                "examples": cand.get("examples"),
                "baseline": base.get("accuracy"),
                "candidate": cand.get("accuracy"),
                "delta": delta.get("accuracy"),
                "interval": delta.get("accuracy_ci"),
                "p_value": rule_p_value(sid, paired.get(NEWLY_RIGHT), paired.get(NEWLY_WRONG)),
                "newly_right": paired.get(NEWLY_RIGHT),
                "newly_wrong": paired.get(NEWLY_WRONG),
            }
        )
    return rows


def worst_first(summary: dict) -> list[str]:
    """The class slices, the largest drop first (then by slice order)."""
    rows = [row for row in per_class_rows(summary) if row["slice"] != "overall"]
    order = {sid: index for index, sid in enumerate(summary["slices"])}
    ranked = sorted(
        rows, key=lambda row: (row["delta"] if row["delta"] is not None else float("inf"), order[row["slice"]])
    )
    return [row["slice"] for row in ranked]


def per_class_table(summary: dict, slices: list[str] | None = None, table_id: str = "per-class") -> Table:
    """Accuracy per slice for both models, the delta, its interval, p and the changed counts (all slices, or `slices`)."""
    table = Table(
        table_id,
        [
            Column("slice", left=True),
            Column("examples"),
            Column(summary["baseline"]["label"]),
            Column(summary["candidate"]["label"]),
            Column("delta"),
            Column("95% CI of delta", left=True),
            Column(PER_CLASS_P),
            Column("newly right"),
            Column("newly wrong"),
        ],
    )
    for row in per_class_rows(summary, slices):
        delta = row["delta"]
        tone = "bad" if delta is not None and delta < 0 else ("good" if delta else "")
        table.add(
            row["title"],
            "-" if row["examples"] is None else f"{row['examples']:.0f}",
            fmt(row["baseline"]),
            fmt(row["candidate"]),
            Cell(fmt(delta, True), css=tone),
            interval_text(row["interval"]),
            p_value_text(row["p_value"]),
            count_text(row["newly_right"]),
            count_text(row["newly_wrong"]),
        )
    return table


def per_feature_tables(summary: dict) -> list[tuple[str, Table]]:
    """One table per slice feature (its values' slices), as the per-class table is for the classes."""
    return [
        (name, per_class_table(summary, slices, table_id=f"feature-{name}"))
        for name, slices in (summary.get("feature_slices") or {}).items()
    ]


# --- the verdict ------------------------------------------------------------------------


def verdict_headline(verdict: dict | None) -> str:
    if verdict is None:
        return "UNJUDGED"
    return "PASSED" if verdict["passed"] else "FAILED"


def _result_cell(check: dict) -> Cell:
    return {
        "pass": Cell("pass", css="good"),
        "fail": Cell("FAIL", css="bad", strong=True),
        "inconclusive": Cell("inconclusive", hint=check.get("message", "")),
        "warn": Cell("regressed (warning)", css="bad", hint=check.get("message", "")),
    }[check["status"]]


def checks_table(verdict: dict, checks: list[dict] | None = None) -> Table:
    """One row per check of the verdict (or of `checks`): the evidence, what the rule needs, the result."""
    table = Table(
        "checks",
        [
            Column("rule", left=True),
            Column("slice", left=True),
            Column("baseline"),
            Column("candidate"),
            Column("delta"),
            Column("95% CI of delta", left=True),
            Column(CHECKS_P),
            Column("newly right / wrong"),
            Column("needs", left=True),
            Column("result", left=True),
        ],
    )
    for check in verdict["checks"] if checks is None else checks:
        counts = check.get("counts") or {}
        result = _result_cell(check)
        table.add(
            check["rule"],
            check.get("title") or check["slice"],
            fmt(check["baseline"]),
            fmt(check["candidate"]),
            fmt(check["delta"], True),
            interval_text(check.get("interval")),
            p_value_text(check.get("p_value")),
            f"{counts[NEWLY_RIGHT]} / {counts[NEWLY_WRONG]}" if counts else "-",
            check["threshold"],
            result,
        )
    return table


def recipe_table(verdict: dict) -> Table:
    """One row per recipe check: each seed's delta, their mean and interval, and the churn floor beside the
    candidates' newly-wrong rate (the rate any retraining gives against what this change gives)."""
    recipe = verdict["recipe"]
    floor, newly_wrong = (
        {"overall": recipe[key]["overall"], **recipe[key]["per_class"]} for key in ("churn_floor", "newly_wrong_rate")
    )
    table = Table(
        "recipe-checks",
        [
            Column("rule", left=True),
            Column("slice", left=True),
            Column("per seed", left=True),
            Column("mean"),
            Column("95% CI (seeds and examples)", left=True),
            Column(RECIPE_P),
            Column("newly wrong"),
            Column("churn floor"),
            Column("needs", left=True),
            Column("result", left=True),
        ],
    )
    for check in recipe["checks"]:
        result = _result_cell(check)
        sid = check["slice"]
        mean = check["delta"] if check["delta"] is not None else check["candidate"]
        table.add(
            check["rule"],
            check.get("title") or sid,
            " ".join(fmt(value, check["delta"] is not None) for value in check.get("per_seed") or []),
            fmt(mean, check["delta"] is not None),
            interval_text(check.get("interval")),
            p_value_text(check.get("p_value")),
            fmt(newly_wrong.get(sid)),
            fmt(floor.get(sid)),
            check["threshold"],
            result,
        )
    return table


def _check_blocks(
    verdict: dict, checks: list[dict], mode: str, table, note: str, lead: str = "", kind: str = ""
) -> list[str]:
    """How many checks passed, then every check as a table (`mode` "table") or the failing ones as a list."""
    failed = [check for check in checks if not check["passed"]]
    examples = verdict.get("eval_examples")
    blocks = [
        f"{lead}{len(checks) - len(failed)} of {len(checks)} {kind}checks passed"
        + (f" on {examples} evaluation examples" if examples is not None else "")
        + f" (rules from {esc(verdict.get('rules', {}).get('source', '?'))})."
        + (" The verdict follows these checks." if kind else "")
    ]
    if mode == "table":
        blocks += [markdown(table()), esc(note) + "."]
    elif failed:
        blocks.append(f"**Failing {kind}checks**")
        blocks.append("\n".join(f"- {esc(check['rule'])}: {esc(check['message'])}" for check in failed))
    return blocks


def verdict_markdown(
    verdict: dict | None,
    candidate: str | None = None,
    baseline: str | None = None,
    unjudged: str = "",
    checks: str = "table",
) -> str:
    """The verdict as Markdown: heading, warnings, how many checks passed, then the checks.

    The models are named from the verdict unless given. `checks` is "table" (every
    check, for summary.md) or "failed" (a list of the failing ones, for a
    pull-request comment). Blocks are separated by a blank line, so a warning's
    quote never swallows the line after it.
    """
    if verdict is not None and candidate is None and baseline is None:
        candidate, baseline = verdict["candidate"]["label"], verdict["baseline"]["label"]
    headline = verdict_headline(verdict)
    icon = {"PASSED": "✅", "FAILED": "❌"}.get(headline, "⚠️")
    models = f": {code(candidate)} vs {code(baseline)}" if candidate is not None and baseline is not None else ""
    if verdict is not None and verdict.get("recipe") is not None:
        models += f", the recipe over {len(verdict['recipe']['seeds'])} seeds"
    blocks = [f"### {icon} Model gate {headline}{models}"]
    if verdict is None:
        blocks.append(f"No verdict: {esc(unjudged or 'the gate has not judged these results')}.")
        return "\n\n".join(blocks) + "\n"
    if verdict.get("rules_in_force"):
        blocks.append("Rules in force: " + "; ".join(code(line) for line in verdict["rules_in_force"]) + ".")
    blocks += [f"> **Warning:** {esc(warning)}" for warning in verdict.get("warnings", [])]
    recipe = verdict.get("recipe")
    if recipe is not None:
        seeds = recipe["seeds"]
        lead = f"The recipe over {len(seeds)} seeds ({', '.join(map(str, seeds))}): "
        table = lambda: recipe_table(verdict)  # noqa: E731
        blocks += _check_blocks(verdict, recipe["checks"], checks, table, RECIPE_NOTE, lead, "recipe ")
        if checks == "table":  # the first seed's own checks follow, for the record
            blocks.append(f"#### The first seed's pair (seed {seeds[0]}), for the record")
    if recipe is None or checks == "table":
        blocks += _check_blocks(verdict, verdict["checks"], checks, lambda: checks_table(verdict), P_NOTE)
    blocks += [f"Note: {esc(note)}" for note in verdict.get("notes", [])]
    return "\n\n".join(blocks) + "\n"
