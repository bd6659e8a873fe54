"""python -m reports comment: a pull-request comment that updates itself.

Prints Markdown with a hidden marker on its first line, so a CI step can find
the comment it posted before and edit it instead of adding one per push.
Verdict first, then the failing checks, then the per-class table (beyond
20 classes: overall and the worst classes first, the rest collapsed) and,
given --artifact-url, a link to the run's artifact (no link without it). Every piece
of text from data or config is escaped. Without a finished analysis of this run
(an interrupted run) it says UNJUDGED and shows no numbers.

Example:
    python -m reports comment --run-dir runs/demo --artifact-url "$ARTIFACT_URL"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalsuite.errors import run_cli

MARKER = "<!-- evalsuite-gate-comment -->"
MAX_CLASSES_IN_FULL = 20  # beyond this many classes, the worst come first and the rest are collapsed
WORST_SHOWN = 10


def comment_markdown(run, artifact_url: str | None) -> str:
    from evalsuite.formatting import esc
    from evalsuite.run.contract import load_changed, load_summary
    from evalsuite.tables import P_NOTE, verdict_markdown
    from reports.judged import verdict_for

    unfinished = unfinished_analysis(run)
    if unfinished:
        # An interrupted run leaves the last analysis' files behind: none of their numbers are this run's.
        return MARKER + "\n" + verdict_markdown(None, unjudged=unfinished).rstrip("\n") + "\n"
    summary = load_summary(run.analysis_dir)
    load_changed(run.analysis_dir)
    verdict, unjudged = verdict_for(run, summary)
    base, cand = summary["baseline"]["label"], summary["candidate"]["label"]
    examples = summary["eval_data"]["examples"]
    if artifact_url:
        where = f"report, verdict and JUnit: [run artifact]({artifact_link(artifact_url)})."
    else:
        where = "report, verdict and JUnit are in the run folder (report/, gate/)."
    blocks = [MARKER + "\n" + verdict_markdown(verdict, cand, base, unjudged, checks="failed").rstrip("\n")]
    if verdict is not None and verdict.get("recipe") is not None:
        from evalsuite.tables import RECIPE_NOTE, markdown, recipe_table

        # The recipe leads; the first seed's own table follows, folded.
        blocks += [
            markdown(recipe_table(verdict)),
            esc(RECIPE_NOTE) + ".",
            f"<details><summary>Seed {verdict['recipe']['seeds'][0]}'s pair, per class</summary>",
            per_class_markdown(summary),
            "</details>",
        ]
    else:
        blocks.append(per_class_markdown(summary))
    if verdict is not None:
        blocks += regressed_lines(verdict)
    blocks.append(f"{examples} evaluation examples; {esc(P_NOTE)}; {where}")
    return "\n\n".join(blocks) + "\n"


def regressed_lines(verdict: dict) -> list[str]:
    """Where it got worse: one line per regressed discovered slice, confirmation-half numbers."""
    from evalsuite.formatting import esc
    from evalsuite.rules.discovered import RULE

    regressed = [c for c in verdict["checks"] if c["rule"] == RULE and c["status"] in ("fail", "warn")]
    if not regressed:
        return []
    lines = [
        f"- {esc(c['title'])}: {c['counts']['newly_wrong']} newly wrong, {c['counts']['newly_right']} newly right "
        f"of {c['counts']['examples']} (delta {c['delta']:+.4f}, p {c['p_value']:.2g})"
        + ("" if c["passed"] else " **fails the gate**")
        for c in regressed
    ]
    return ["**Where it got worse** (slices no one named, confirmed on examples they were not found on):\n" + "\n".join(lines)]


def unfinished_analysis(run) -> str:
    """Why the run folder holds no finished analysis of this run ('' when it does): one whose stage
    manifest.json records done (a stage that starts drops its record first, and writes it last)."""
    if run.stage("analysis"):
        return ""
    return (
        "this run's analysis has not finished (manifest.json records none); "
        "numbers left by an earlier analysis are not shown"
    )


def per_class_markdown(summary: dict) -> str:
    """The per-class table; beyond MAX_CLASSES_IN_FULL classes, overall and the worst first, the rest collapsed."""
    from evalsuite.tables import markdown, per_class_table, worst_first

    ranked = worst_first(summary)
    if len(ranked) <= MAX_CLASSES_IN_FULL:
        return markdown(per_class_table(summary))
    shown, rest = ranked[:WORST_SHOWN], ranked[WORST_SHOWN:]
    return "\n\n".join(
        [
            f"**The {len(shown)} classes with the largest drop** (of {len(ranked)}; worst first)",
            markdown(per_class_table(summary, ["overall", *shown])),
            f"<details><summary>The other {len(rest)} classes</summary>",
            markdown(per_class_table(summary, rest)),
            "</details>",
        ]
    )


def artifact_link(url: str) -> str:
    """The address as a Markdown link destination: spaces, brackets, parentheses and quotes percent-encoded."""
    from urllib.parse import quote

    # CommonMark decodes entities in a destination: "&amp;" keeps a query's "&copy=1" as written.
    return quote(url, safe=":/?#@!$&'*+,;=%~-._").replace("&", "&amp;")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports comment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument(
        "--artifact-url",
        default=None,
        help="where CI uploaded the run's report (a link in the comment; none without it)",
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def work() -> int:
        from evalsuite.errors import InputError
        from evalsuite.run.folder import RunDir

        if not args.run_dir.is_dir():
            raise InputError(f"{args.run_dir}: no such run folder")
        if args.artifact_url and not args.artifact_url.startswith(("https://", "http://")):
            raise InputError(f"--artifact-url: expected an http(s) address, got {args.artifact_url!r}")
        sys.stdout.write(comment_markdown(RunDir(args.run_dir), args.artifact_url))
        return 0

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
