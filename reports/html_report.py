"""RUN/report/index.html: one self-contained page an ML lead reads in a minute.

Everything comes from saved results (manifest, TFMA summary, verdict, event
files); plots are embedded PNGs; every piece of text from data or config is
escaped.
"""

from __future__ import annotations

import base64

from evalsuite.data.class_names import title
from evalsuite.formatting import esc_html as esc
from evalsuite.run.contract import class_slice
from evalsuite.run.folder import RunDir
from evalsuite.tables import (
    P_NOTE,
    checks_table,
    html,
    per_feature_tables,
    verdict_headline,
)
from reports.curves import read_curves
from reports.per_class_view import per_class_chart, per_class_html
from reports.plots import changed_figure, confusion_figure, curves_figure

CHANGED_PER_CLASS = 6
CHANGED_CLASSES = 20  # the gallery shows the classes with the most changes, at most this many
MAX_CHECKS_IN_FULL = 24  # beyond this many checks, the passing ones (and inconclusive ones past it) collapse
MAX_FAILURES_LISTED = 10  # the verdict lists this many failures; the checks table has them all

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:24px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
.verdict{padding:14px 18px;border-radius:8px;margin:14px 0;font-size:16px}
.pass{background:#e6f4ea;border:1px solid #8cc79b} .fail{background:#fce8e6;border:1px solid #e39a8f}
.warn{background:#fff4e5;border:1px solid #e6b566;padding:10px 14px;border-radius:8px;margin:10px 0}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e3e6ec;padding:4px 10px;text-align:right} th{background:#f5f6f8}
td.l,th.l{text-align:left} .bad{color:#b3261e;font-weight:600} .good{color:#1e7d34}
img{max-width:100%} .pair{display:flex;flex-wrap:wrap;gap:8px} .pair img{min-width:0} code{background:#f5f6f8;padding:1px 4px;border-radius:3px} .muted{color:#5f6775}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def render(
    run: RunDir,
    manifest: dict,
    summary: dict,
    verdict: dict | None,
    unjudged: str,
    changed: dict,
    grids: dict,
    confusion: dict[str, bytes],
    where_worse: str = "",
) -> str:
    """The report as one self-contained HTML page; `grids` from `changed_grids`, `confusion` from
    `confusion_figures`, `where_worse` the discovered slices' section (reports/discovered_section.py)."""
    base_label, cand_label = summary["baseline"]["label"], summary["candidate"]["label"]
    parts = [
        '<!doctype html><html lang=en><head><meta charset=utf-8><link rel=icon href="data:,">',
        f"<title>Model gate: {esc(cand_label)} vs {esc(base_label)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Model gate: <code>{esc(cand_label)}</code> vs <code>{esc(base_label)}</code></h1>",
        f'<div class="muted">run folder {esc(run.path)}</div>',
    ]
    parts.append(_verdict_section(verdict, unjudged))
    parts.append(where_worse)
    max_drop = (verdict or {}).get("rules", {}).get("max_drop")
    parts.append("<h2>Accuracy per class</h2>")
    parts.append(
        f'<p class="muted">{summary["eval_data"]["examples"]} evaluation examples from '
        f"{esc(summary['eval_data']['source'])}; delta = candidate - baseline; intervals: "
        f"{esc(summary.get('confidence_intervals') or 'not computed')}; {esc(P_NOTE)}; "
        "newly right / wrong: examples only the candidate / only the baseline gets right.</p>"
    )
    parts.append(per_class_html(summary))
    figure, caption = per_class_chart(summary, base_label, cand_label, max_drop)
    parts.append(_img(figure, "accuracy per class") + caption)
    for name, table in per_feature_tables(summary):
        parts.append(f"<h2>Accuracy by {esc(name)}</h2>")
        parts.append(
            f'<p class="muted">Slices of the evaluation data\'s feature <code>{esc(name)}</code>, '
            "judged as the classes are (Holm across its values).</p>"
        )
        parts.append(html(table))
    parts.append(_changed_section(changed, summary, grids))
    parts.append(_confusion_section(summary, confusion))
    parts.append(_curves_section(run, manifest))
    parts.append(_provenance_section(run, manifest, summary))
    parts.append("</body></html>")
    return "\n".join(parts)


def _verdict_section(verdict: dict | None, unjudged: str) -> str:
    if verdict is None:
        return f'<div class="verdict fail" id="verdict"><strong>UNJUDGED</strong>: {esc(unjudged)}.</div>'
    passed = verdict["passed"]
    recipe = verdict.get("recipe")
    deciding = recipe["checks"] if recipe is not None else verdict["checks"]
    failed = [c for c in deciding if not c["passed"]]
    head = "".join(
        f'<div class="warn" id="warning"><strong>Warning:</strong> {esc(w)}</div>' for w in verdict.get("warnings", [])
    )
    head += (
        f'<div class="verdict {"pass" if passed else "fail"}" id="verdict"><strong>'
        f"{verdict_headline(verdict)}</strong>: {len(deciding) - len(failed)} of "
        f"{len(deciding)} {'recipe ' if recipe is not None else ''}checks passed"
        + (f" across {len(recipe['seeds'])} seeds" if recipe is not None else "")
        + f" (rules from {esc(verdict['rules'].get('source', '?'))})."
    )
    if failed:
        listed = "".join(f"<li>{esc(c['rule'])}: {esc(c['message'])}</li>" for c in failed[:MAX_FAILURES_LISTED])
        more = len(failed) - MAX_FAILURES_LISTED
        listed += f"<li>and {more} more failing checks, in the table below</li>" if more > 0 else ""
        head += f"<ul>{listed}</ul>"
    head += "</div>"
    table = _checks_html(verdict) + f'<p class="muted">{esc(P_NOTE)}.</p>'
    notes = "".join(f'<p class="muted">Note: {esc(note)}</p>' for note in verdict.get("notes", []))
    if recipe is not None:
        from reports.recipe_section import recipe_section

        return (
            head
            + recipe_section(verdict)
            + f"<h2>Rules: seed {recipe['seeds'][0]}'s pair, for the record</h2>"
            + table
            + notes
        )
    return head + "<h2>Rules</h2>" + table + notes


def _checks_html(verdict: dict) -> str:
    """Every check; with many, the failing and overall ones and the first inconclusive ones, the rest collapsed."""
    checks = verdict["checks"]
    if len(checks) <= MAX_CHECKS_IN_FULL:
        return html(checks_table(verdict))
    # Every failure and every overall check; inconclusive ones while there is room (at 1,000 classes of few
    # examples nearly every class is inconclusive).
    decisive = {id(c) for c in checks if c["status"] in ("fail", "warn") or c["slice"] == "overall"}
    room = max(0, MAX_CHECKS_IN_FULL - len(decisive))
    inconclusive = [id(c) for c in checks if id(c) not in decisive and c["status"] == "inconclusive"]
    chosen = decisive | set(inconclusive[:room])
    shown = [c for c in checks if id(c) in chosen]
    rest = [c for c in checks if id(c) not in chosen]
    out = html(checks_table(verdict, shown))
    if rest:
        unsure = sum(c["status"] == "inconclusive" for c in rest)
        what = "all passed" if not unsure else f"{unsure} inconclusive, {len(rest) - unsure} passed"
        out += f"<details><summary>{len(rest)} more checks, {what}</summary>{html(checks_table(verdict, rest))}</details>"
    return out


def changed_by_class(changed: dict, change: str, per_class: int = CHANGED_PER_CLASS) -> tuple[list[dict], dict]:
    """Up to `per_class` examples of one kind of change per class (most confident candidate first), and full counts.

    With many classes only the CHANGED_CLASSES classes with the most such changes are drawn.
    """
    chosen, counts = {}, {}
    ranked = sorted(
        (e for e in changed["examples"] if e["change"] == change),
        key=lambda e: (-e["candidate"]["confidence"], e["index"]),
    )
    for example in ranked:
        counts[example["label"]] = counts.get(example["label"], 0) + 1
        chosen.setdefault(example["label"], [])
        if len(chosen[example["label"]]) < per_class:
            chosen[example["label"]].append(example)
    drawn = sorted(sorted(chosen, key=lambda label: (-counts[label], label))[:CHANGED_CLASSES])
    return [e for label in drawn for e in chosen[label]], counts


def changed_grids(run: RunDir, changed: dict, summary: dict) -> dict[str, bytes]:
    """Per kind of change, its image grid as PNG: rendered once for the report and for TensorBoard."""
    from evalsuite.data.spec import recorded_spec
    from reports.tfrecord import read_images  # without TensorFlow

    if not changed["examples"]:
        return {}
    names = summary["eval_data"].get("class_names")
    spec = recorded_spec(summary["eval_data"], str(run.analysis_dir))
    drawn = {change: changed_by_class(changed, change)[0] for change in ("newly_wrong", "newly_right")}
    # Only the drawn examples' images are read: a large evaluation set is never held whole.
    indices = [example["index"] for examples in drawn.values() for example in examples]
    images = read_images(str(run.resolve(changed["pattern"])), spec, indices)
    return {change: changed_figure(images, examples, names) for change, examples in drawn.items() if examples}


def _changed_section(changed: dict, summary: dict, grids: dict[str, bytes]) -> str:
    """The actual images the candidate newly gets wrong and newly gets right, by class."""
    names = summary["eval_data"].get("class_names")
    out = ["<h2>What changed</h2>"]
    if summary.get("recipe"):
        out.append(
            f"<p class=\"muted\">Seed {summary['recipe']['seeds'][0]}'s pair; every seed's newly wrong and "
            "newly right are counted in the recipe's table above.</p>"
        )
    if not changed["examples"]:
        return out[0] + "<p>The two models get exactly the same examples right.</p>"
    for change, heading in (("newly_wrong", "Newly wrong"), ("newly_right", "Newly right")):
        examples, counts = changed_by_class(changed, change)
        total = sum(counts.values())
        out.append(f"<h3 id={change}>{heading}: {total} examples</h3>")
        if not examples:
            out.append("<p>None.</p>")
            continue
        listing = ", ".join(
            f"{esc(title(f'label={label}', names))}: {count}" for label, count in sorted(counts.items())
        )
        out.append(
            f'<p class="muted">Per class ({listing}); at most {CHANGED_PER_CLASS} shown per class'
            + (f" and the {CHANGED_CLASSES} classes with the most" if len(counts) > CHANGED_CLASSES else "")
            + ". Each image: "
            "baseline prediction and confidence, then the candidate's.</p>"
        )
        out.append(_img(grids[change], f"{heading.lower()} examples"))
    return "".join(out)


def most_confused(matrix: list[list[int]], top: int = 5) -> list[tuple[int, int, int]]:
    """(true, predicted, count) for the largest off-diagonal cells."""
    cells = [
        (count, true, predicted)
        for true, row in enumerate(matrix)
        for predicted, count in enumerate(row)
        if true != predicted and count > 0
    ]
    return [
        (true, predicted, count) for count, true, predicted in sorted(cells, key=lambda c: (-c[0], c[1], c[2]))[:top]
    ]


def confusion_matrices(summary: dict) -> dict[str, list[list[int]]]:
    """Each model's overall confusion matrix, by role, for the models the analysis has one for."""
    matrices = {}
    for role in ("baseline", "candidate"):
        matrix = summary.get("confusion_matrices", {}).get(role, {}).get("overall")
        if matrix:
            matrices[role] = matrix
    return matrices


def confusion_figures(summary: dict) -> dict[str, bytes]:
    """Each model's confusion matrix as PNG, by role: drawn once, shown side by side here and in TensorBoard."""
    names = summary["eval_data"].get("class_names")
    return {
        role: confusion_figure({summary[role]["label"]: matrix}, names)
        for role, matrix in confusion_matrices(summary).items()
    }


def _confusion_section(summary: dict, figures: dict[str, bytes]) -> str:
    matrices = {summary[role]["label"]: matrix for role, matrix in confusion_matrices(summary).items()}
    if not matrices:
        return "<h2>Confusion matrices</h2><p>Not in the analysis.</p>"
    pictures = [_img(png, f"confusion matrix of {summary[role]['label']}") for role, png in figures.items()]
    out = ["<h2>Confusion matrices</h2>", f'<div class="pair">{"".join(pictures)}</div>']
    names = summary["eval_data"].get("class_names")
    out.append(
        "<table id=confused><tr><th class=l>model</th><th class=l>most confused (true &rarr; predicted: count)</th></tr>"
    )

    def name(class_id: int) -> str:
        return esc(title(class_slice(class_id), names).replace("digit ", ""))

    for label, matrix in matrices.items():
        pairs = ", ".join(f"{name(t)} &rarr; {name(p)}: {c}" for t, p, c in most_confused(matrix))
        out.append(f"<tr><td class=l>{esc(label)}</td><td class=l>{pairs or 'none'}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _curves_section(run: RunDir, manifest: dict) -> str:
    runs = manifest.get("stages", {}).get("training", {}).get("runs", {})
    curves = {name: read_curves(run.path / info["logs"]) for name, info in runs.items()}
    curves = {name: c for name, c in curves.items() if c}
    if not curves:
        return "<h2>Training curves</h2><p>No TensorBoard logs in this run folder.</p>"
    return (
        "<h2>Training curves</h2>"
        + _img(curves_figure(curves, (manifest["stages"]["training"].get("seeds") or [None])[0]), "training curves")
        + (
            '<p class="muted">Read from the TensorBoard event files in '
            + ", ".join(f"<code>{esc(info['logs'])}</code>" for info in runs.values())
            + "</p>"
        )
    )


def _provenance_section(run: RunDir, manifest: dict, summary: dict) -> str:
    stages = manifest.get("stages", {})
    data = stages.get("data", {})
    training = stages.get("training", {})
    rows = [
        ("data source", data.get("source", "?")),
        ("data fingerprint", data.get("fingerprint", "?")),
        ("train / eval examples", f"{data.get('train_examples', '?')} / {data.get('eval_examples', '?')}"),
        ("data spec", _spec_text(data)),
        ("evaluated on", f"{summary['eval_data']['source']} ({summary['eval_data']['examples']} examples)"),
        ("Beam runner", summary.get("runner", "?")),
        ("seed", training.get("config", {}).get("seed", "?")),
        ("training settings", settings_text(training.get("config", {}))),
        ("training config", _config_text(training)),
        ("sliced by", ", ".join(summary["eval_data"].get("slice_features") or {}) or "the true class only"),
    ]
    rows += [(name, version) for name, version in sorted(manifest.get("environment", {}).items())]
    rows += stage_times(manifest)
    artifacts = [
        ("manifest", run.manifest_path),
        ("models", run.models_dir),
        ("TensorBoard logs", run.logs_root),
        ("evaluation examples", run.data_dir),
        ("TFMA output", run.tfma_dir),
        ("verdict", run.verdict_path),
        ("JUnit", run.junit_path),
    ]
    out = ["<h2>What ran</h2><table id=provenance>"]
    out += [f"<tr><th class=l>{esc(k)}</th><td class=l>{esc(v)}</td></tr>" for k, v in rows]
    out += [f"<tr><th class=l>{esc(k)}</th><td class=l><code>{esc(v)}</code></td></tr>" for k, v in artifacts]
    out.append("</table>")
    return "".join(out)


# What a setting left unset means, by name: "learning_rate=None" tells a reader nothing.
UNSET_MEANS = {
    "learning_rate": "the optimizer's default",
    "image_size": "as the data",
    "channels": "as the data",
    "train_limit": "all",
    "eval_limit": "all",
}


def settings_text(config: dict) -> str:
    """The training settings as `key=value`, each unset one named by what it means."""
    return ", ".join(f"{key}={UNSET_MEANS.get(key, 'default') if value is None else value}" for key, value in config.items())


def _config_text(training: dict) -> str:
    """Where the config came from, and which values a flag or the file set (the rest are defaults)."""
    origins = training.get("config_origins") or {}
    set_by = [f"{key} by {origin}" for key, origin in sorted(origins.items()) if origin != "default"]
    return f"{training.get('config_file', 'built-in defaults')}" + (f" ({', '.join(set_by)})" if set_by else "")


def _spec_text(data_record: dict) -> str:
    """The data spec training recorded, in a line (a run folder from before specs holds MNIST's)."""
    from evalsuite.data.spec import recorded_spec
    from evalsuite.errors import InputError

    try:
        spec = recorded_spec(data_record, "manifest")
    except InputError as error:
        return str(error)
    return f"{spec.describe()}; pixels: {spec.encoding}"


def stage_times(manifest: dict) -> list[tuple[str, str]]:
    """How long each stage took when it last ran, each saying what it covers.

    The data stage runs inside training and is counted in its time, so training
    gets one time, the whole stage's, not two that look alike.
    """
    stages = manifest.get("stages", {})
    models = ", ".join(stages.get("training", {}).get("runs", {})) or "the models"
    covers = {
        "training": f"the whole stage: loading the data, writing the evaluation examples, fitting and exporting {models}",
        "analysis": "TFMA on both models, paired counts and the changed examples"
        + (
            " (and every further seed's models, in the same pipeline)"
            if stages.get("analysis", {}).get("recipe")
            else ""
        ),
        "gate": "judging the analysis against the rules",
    }
    rows = [
        (f"time: {name}", f"{stages[name]['seconds']:.1f}s, {covers[name]}")
        for name in covers
        if isinstance(stages.get(name, {}).get("seconds"), (int, float))
    ]
    if isinstance(manifest.get("pipeline_seconds"), (int, float)):
        rows.append(
            (
                "time: pipeline",
                f"{manifest['pipeline_seconds']:.1f}s, the last whole-pipeline command "
                "(imports included; a reused stage costs next to nothing)",
            )
        )
    return rows
