"""RUN/report/slices.html: the slicing browser, one self-contained file that needs no network.

Every slice TFMA computed (overall, the classes, the declared features' values,
its cross slices) and every discovered slice in one table, both models side by
side with the paired delta; choose the metric, sort by any column, filter by
kind, feature, name and a minimum example count; click a slice for its
confusion matrix and its changed images with both models' predictions. With a
registry (`python -m reports view --registry DIR`) it also draws accuracy
across the blessed models. The data ride in the page as JSON
(reports/slices_data.py), drawn by its own script; a Content-Security-Policy
forbids every request but the page's own inline data.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from evalsuite.formatting import esc_html as esc
from reports.slices_detail_script import DETAIL_SCRIPT
from reports.slices_script import START_SCRIPT, TABLE_SCRIPT

SLICES_NAME = "slices.html"

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
body{font:12.5px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330}
header{padding:12px 18px 6px} h1{font-size:19px;margin:0} h2{font-size:16px;margin:0 0 4px} h3{font-size:13px;margin:12px 0 4px}
.muted{color:#5f6775} .bad{color:#b3261e;font-weight:600} .good{color:#1e7d34}
.warn{background:#fff4e5;border:1px solid #e6b566;padding:8px 12px;border-radius:6px;margin:6px 0}
#controls{display:flex;flex-wrap:wrap;gap:6px 16px;align-items:center;padding:6px 18px;background:#f5f6f8;border-block:1px solid #e3e6ec;position:sticky;top:0;z-index:2}
#controls label{display:flex;gap:4px;align-items:center} #controls input[type=number]{width:70px} #count{color:#5f6775}
main{display:flex;gap:14px;padding:8px 18px;align-items:flex-start}
#table-box{flex:1 1 auto;min-width:0;overflow-x:auto}
#detail{flex:0 0 370px;position:sticky;top:48px;max-height:calc(100vh - 60px);overflow:auto;border:1px solid #e3e6ec;border-radius:8px;padding:10px 12px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e3e6ec;padding:3px 5px;text-align:right;white-space:nowrap}
th{background:#f5f6f8;font-weight:600} th[data-sort]{cursor:pointer} th[aria-sort=ascending]::after{content:" \\25B2"} th[aria-sort=descending]::after{content:" \\25BC"}
td.l,th.l{text-align:left} td.k{color:#5f6775} td.c-name{max-width:200px;overflow:hidden;text-overflow:ellipsis}
#slices tbody tr{cursor:pointer} #slices tbody tr:hover{background:#f0f4fb} #slices tr[aria-selected]{background:#dfe9fb;outline:1px solid #8fb0e8}
#slices tr.worse td.c-md{color:#b3261e;font-weight:600} #slices tr.better td.c-md{color:#1e7d34}
th.chart{white-space:normal;width:90px;max-width:90px} .bar{width:90px;height:12px;position:relative;background:#f5f6f8} .bar span{display:block;height:6px}
.bar-b{background:#9aa3b2} .bar-c{background:#3f6fd8} .bar span.bar-c:only-child{height:12px}
.bar-neg,.bar-pos{height:12px!important} .bar-neg{background:#d2473d} .bar-pos{background:#3d9d56}
.matrix{margin:4px 0 8px;font-size:11px} .matrix td,.matrix th{padding:1px 4px;min-width:14px;text-align:center} .matrix td.more{outline:2px solid #b3261e;outline-offset:-2px}
.matrix caption{text-align:left;color:#5f6775}
.grid{display:flex;flex-wrap:wrap;gap:6px} figure.ex{margin:0;width:96px;font-size:10px;line-height:1.25}
figure.ex img{width:56px;height:56px;display:block;object-fit:contain;background:#000} img.px{image-rendering:pixelated}
button.link{background:none;border:0;color:#2553b8;text-decoration:underline;cursor:pointer;padding:0;font:inherit}
#time-series{padding:4px 18px 18px} #series-grid{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}
button.spark{display:flex;flex-direction:column;align-items:flex-start;border:1px solid #e3e6ec;border-radius:6px;background:#fff;padding:4px;cursor:pointer;font:inherit}
svg text{font-size:10px;fill:#5f6775} .grid-line{stroke:#e3e6ec}
polyline{fill:none;stroke-width:2} polyline.series-main{stroke:#3f6fd8} polyline.series-overall{stroke:#9aa3b2}
circle.series-main{fill:#3f6fd8} circle.series-overall{fill:#9aa3b2} circle.other{fill:#fff;stroke:#3f6fd8;stroke-width:2}
#series-legend{margin:0 0 6px} .key-overall{color:#9aa3b2;font-weight:600} .key-main{color:#3f6fd8;font-weight:600}
#detail table{font-size:11.5px}
button.close{display:none;float:right;border:0;background:none;font-size:20px;line-height:1;cursor:pointer;color:#5f6775}
@media (max-width:1100px){#detail{position:fixed;top:0;right:0;bottom:0;max-height:none;width:360px;background:#fff;box-shadow:-4px 0 16px rgba(0,0,0,.18);border-radius:0;z-index:3}
#detail:empty{display:none} button.close{display:block}}
footer{padding:6px 18px 24px;color:#5f6775;max-width:1100px}
"""

BODY = """
<header><h1 id=title>Slices</h1><div class=muted id=run></div><div id=warnings></div></header>
<div id=controls role=search>
<label>metric <select id=metric></select></label>
<label>kind <select id=kind><option value="">all</option></select></label>
<label>feature <select id=feature><option value="">all</option></select></label>
<label>at least <input id=min-examples type=number min=0 step=1 value=0> examples</label>
<label>name <input id=search type=search placeholder="digit 3, pen=red"></label>
<span id=count></span>
</div>
<main><div id=table-box>
<table id=slices><thead>
<tr><th colspan=3></th><th colspan=3 id=model-head>accuracy</th><th colspan=2>paired delta</th><th colspan=2>changed</th><th></th></tr>
<tr><th class=l data-sort=name>slice</th><th class=l data-sort=kind>kind</th><th data-sort=n data-dir=desc>examples</th>
<th data-sort=m0 id=base-head></th><th data-sort=m1 id=cand-head></th><th data-sort=md id=delta-head>delta</th>
<th data-sort=ci>95% interval</th><th data-sort=p>p (worse)</th>
<th data-sort=nw data-dir=desc>newly<br>wrong</th><th data-sort=nr data-dir=desc>newly<br>right</th>
<th class="l chart" data-sort=chart id=chart-head></th></tr>
</thead><tbody></tbody></table>
<p><button id=more type=button hidden></button></p>
</div><aside id=detail aria-live=polite></aside></main>
<section id=time-series hidden><h2>Accuracy across blessed models</h2><p class=muted id=series-note></p>
<label>slice <select id=series></select></label><div id=series-chart></div><div id=series-values></div><div id=series-grid></div></section>
<footer id=source></footer>
"""


def page_json(data: dict) -> str:
    """The data as JSON that cannot end its <script> element or open a comment inside it."""
    text = json.dumps(_finite(data), separators=(",", ":"), sort_keys=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(value):
    """The data with every NaN or infinity as null (JSON has neither; a cross-entropy can be infinite)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def render_page(data: dict) -> str:
    return "".join(
        [
            '<!doctype html><html lang=en><head><meta charset=utf-8><link rel=icon href="data:,">',
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
            '<meta name=viewport content="width=device-width,initial-scale=1">',
            f"<title>Slices: {esc(data['title'])}</title><style>{STYLE}</style></head><body>",
            BODY,
            f'<script type="application/json" id=data>{page_json(data)}</script>',
            f"<script>{TABLE_SCRIPT}{DETAIL_SCRIPT}{START_SCRIPT}</script>",
            "</body></html>",
        ]
    )


def slices_page(run, summary: dict, changed: dict, discovered: dict, numbers: dict | None = None, history=None) -> str:
    """The page for a run folder; `numbers` read from TFMA's output (default: from summary.json)."""
    from reports.slices_data import page_data

    return render_page(page_data(run, summary, changed, discovered, numbers, history))


def write_slices_page(run, summary: dict, changed: dict, discovered: dict) -> Path:
    """RUN/report/slices.html from the saved results (summary.json's numbers: no TensorFlow imported)."""
    from evalsuite.run.atomic import write_text_atomic

    path = run.report_dir / SLICES_NAME
    write_text_atomic(path, slices_page(run, summary, changed, discovered))
    return path
