"""python -m reports: build a run's report, or open its views.

Examples:
    python -m reports --run-dir runs/demo            # RUN/report/index.html and summary.md
    python -m reports view --run-dir runs/demo       # TensorBoard and the report side by side
    python -m reports comment --run-dir runs/demo    # a pull-request comment (Markdown) that updates itself
"""

from __future__ import annotations

import sys

from evalsuite.cli import new_parser, open_run
from evalsuite.errors import run_cli


def main(argv: list[str] | None = None) -> int:
    # No hash seed is pinned here (the other stages re-run themselves with PYTHONHASHSEED=0): the report runs
    # no Beam pipeline and orders nothing by string hashes, and a second interpreter start is 5% of its time.
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["view"]:
        from reports.view import main as view_main

        return view_main(argv[1:])
    if argv[:1] == ["comment"]:
        from reports.comment import main as comment_main

        return comment_main(argv[1:])
    parser = new_parser("python -m reports", __doc__, new_run_allowed=False)
    args = parser.parse_args(argv)

    def work() -> int:
        from reports.build import build_report

        with open_run(args, new_run_allowed=False) as run:
            result = build_report(run)
        print(f"report: {result.index}")
        return 0

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
