"""python -m reports comment: a pull-request comment that updates itself.

Prints Markdown with a hidden marker on its first line, so a CI step can find
the comment it posted before and edit it instead of adding one per push.
Verdict first, then the failing checks, then the per-class table and a link to
the run's artifact. Every piece of text from data or config is escaped.

Example:
    python -m reports comment --run-dir runs/demo --artifact-url "$ARTIFACT_URL"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalsuite.errors import run_cli

MARKER = "<!-- evalsuite-gate-comment -->"


def comment_markdown(run, artifact_url: str | None) -> str:
    from evalsuite.contract import load_changed, load_summary
    from evalsuite.formatting import esc, fmt, interval_text, p_value_text
    from reports.build import verdict_for
    from reports.markdown import per_class_rows, verdict_headline

    summary = load_summary(run.analysis_dir)
    load_changed(run.analysis_dir)
    verdict, unjudged = verdict_for(run, summary)
    base, cand = summary["baseline"]["label"], summary["candidate"]["label"]
    icon = {"PASSED": "✅", "FAILED": "❌"}.get(verdict_headline(verdict, unjudged), "⚠️")
    lines = [
        MARKER,
        f"### {icon} Model gate {esc(verdict_headline(verdict, unjudged))}: `{esc(cand)}` vs `{esc(base)}`",
        "",
    ]
    if verdict is not None:
        lines += [f"> **Warning:** {esc(warning)}" for warning in verdict.get("warnings", [])]
        failed = [check for check in verdict["checks"] if not check["passed"]]
        if failed:
            lines += ["", "**Failing checks**", ""]
            lines += [f"- {esc(check['rule'])}: {esc(check['message'])}" for check in failed]
        else:
            lines.append(f"All {len(verdict['checks'])} checks passed.")
    lines += [
        "",
        f"| slice | {esc(base)} | {esc(cand)} | delta | 95% CI | p | newly right | newly wrong |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in per_class_rows(summary):
        lines.append(
            f"| {esc(row['title'])} | {fmt(row['baseline'])} | {fmt(row['candidate'])} | {fmt(row['delta'], True)} | "
            f"{interval_text(row['interval'])} | {p_value_text(row['p_value'])} | {row['newly_right']} | "
            f"{row['newly_wrong']} |"
        )
    link = esc(artifact_url) if artifact_url else "ARTIFACT_URL"
    lines += [
        "",
        f"{summary['eval_data']['examples']} evaluation examples; report, verdict and JUnit: [run artifact]({link}).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports comment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument(
        "--artifact-url", default=None, help="where CI uploaded the run's report (a link in the comment)"
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def work() -> int:
        from evalsuite.errors import InputError
        from evalsuite.rundir import RunDir

        if not args.run_dir.is_dir():
            raise InputError(f"{args.run_dir}: no such run folder")
        if args.artifact_url and not args.artifact_url.startswith(("https://", "http://")):
            raise InputError(f"--artifact-url: expected an http(s) address, got {args.artifact_url!r}")
        sys.stdout.write(comment_markdown(RunDir(args.run_dir), args.artifact_url))
        return 0

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
