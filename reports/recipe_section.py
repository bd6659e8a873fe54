"""The report's lead when the run judged a recipe across seeds: its verdict, its checks and its figure."""

from __future__ import annotations

import base64

from evalsuite.formatting import esc
from evalsuite.tables import RECIPE_NOTE, html, recipe_table
from reports.plots import recipe_figure


def recipe_section(verdict: dict) -> str:
    recipe = verdict["recipe"]
    checks = recipe["checks"]
    failed = [check for check in checks if not check["passed"]]
    seeds = ", ".join(map(str, recipe["seeds"]))
    baselines = "the blessed model" if recipe["shared_baseline"] else ", ".join(recipe["baselines"])
    figure = recipe_figure(
        checks,
        {"overall": recipe["churn_floor"]["overall"], **recipe["churn_floor"]["per_class"]},
        {"overall": recipe["newly_wrong_rate"]["overall"], **recipe["newly_wrong_rate"]["per_class"]},
        verdict["rules"].get("max_drop"),
    )
    parts = [
        f"<h2 id=recipe>The recipe across {len(recipe['seeds'])} seeds</h2>",
        f'<p class="muted">Seeds {esc(seeds)}, trained on one split: candidates {esc(", ".join(recipe["candidates"]))} '
        f"against {esc(baselines)}. {len(checks) - len(failed)} of {len(checks)} recipe checks passed; "
        "the verdict follows them.</p>",
        html(recipe_table(verdict)),
        f'<p class="muted">{esc(RECIPE_NOTE)}.</p>',
    ]
    if figure is not None:
        parts.append(
            f'<img alt="the recipe per class" src="data:image/png;base64,{base64.b64encode(figure).decode()}">'
        )
    return "\n".join(parts)
