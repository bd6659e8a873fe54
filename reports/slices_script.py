"""The slicing browser's table: choose a metric, sort by any column, filter, and pick a slice (plain JavaScript).

It reads the page's embedded data (reports/slices_data.py) and writes every
piece of text with textContent, never as HTML. The chosen slice is drawn by
the code in reports/slices_detail_script.py.
"""

TABLE_SCRIPT = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value; else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}
const num = (v) => typeof v === "number" && isFinite(v);
const f4 = (v) => (num(v) ? v.toFixed(4) : "-");
const s4 = (v) => (num(v) ? (v > 0 ? "+" : v < 0 ? "" : "+") + v.toFixed(4) : "-");
const fp = (v) => (num(v) ? (v >= 0.001 ? v.toFixed(3) : v.toExponential(1)) : "-");
const fi = (v) => (num(v) ? String(Math.round(v)) : "-");
const width = (r) => (r.ci ? r.ci[1] - r.ci[0] : null);
// The metrics a user can choose: what the chart column draws, and how "worse" sorts (worst first).
const METRICS = {
  delta: {label: "paired delta (accuracy)", value: (r) => r.d, signed: true, sort: "md", dir: 1},
  accuracy: {label: "accuracy", model: "accuracy", value: (r) => r.acc[1], sort: "m1", dir: 1},
  examples: {label: "example count", model: "examples", value: (r) => r.n, sort: "m1", dir: -1},
  newly_wrong: {label: "newly wrong", value: (r) => r.nw, sort: "nw", dir: -1},
  newly_right: {label: "newly right", value: (r) => r.nr, sort: "nr", dir: 1},
  width: {label: "interval width", value: width, sort: "chart", dir: -1},
  p: {label: "p-value (worse)", value: (r) => r.p, sort: "p", dir: 1},
  crossentropy: {label: "cross-entropy", model: "crossentropy", value: (r) => r.ce[1], sort: "m1", dir: -1},
};
// The three model columns show the chosen metric when each model has one, else accuracy: [baseline, candidate, delta].
const MODEL = {
  accuracy: (r) => [r.acc[0], r.acc[1], r.d],
  crossentropy: (r) => [r.ce[0], r.ce[1], num(r.ce[0]) && num(r.ce[1]) ? r.ce[1] - r.ce[0] : null],
  examples: (r) => [r.nb, r.n, num(r.nb) && num(r.n) ? r.n - r.nb : null],
};
const modelOf = () => METRICS[state.metric].model || "accuracy";
const trio = (r) => MODEL[modelOf()](r);
const SORT = {
  name: (r) => r.o, kind: (r) => r.kind, n: (r) => r.n, m0: (r) => trio(r)[0], m1: (r) => trio(r)[1], md: (r) => trio(r)[2],
  ci: (r) => (r.ci ? r.ci[0] : null), p: (r) => r.p, nw: (r) => r.nw, nr: (r) => r.nr,
  chart: (r) => METRICS[state.metric].value(r),
};
const PAGE = 300;
const state = {metric: "delta", sort: "md", dir: 1, kind: "", feature: "", min: 0, search: "", limit: PAGE, selected: null};
const byId = new Map(D.rows.map((r) => [r.id, r]));

function setUp() {
  document.title = "Slices: " + D.title;
  $("title").textContent = "Slices: " + D.title;
  $("run").textContent = "run folder " + D.run;
  for (const warning of D.warnings) $("warnings").append(el("div", {class: "warn", role: "alert", text: "Warning: " + warning}));
  for (const [key, metric] of Object.entries(METRICS)) $("metric").append(el("option", {value: key, text: metric.label}));
  const kinds = [...new Set(D.rows.map((r) => r.kind))];
  for (const kind of kinds) $("kind").append(el("option", {value: kind, text: kind}));
  const features = [...new Set(D.rows.map((r) => r.feature).filter((f) => f))];
  for (const feature of features) $("feature").append(el("option", {value: feature, text: feature}));
  $("base-head").textContent = D.labels.baseline;
  $("cand-head").textContent = D.labels.candidate;
  $("source").textContent =
    "Numbers: " + D.source + ". " + D.examples_total + " evaluation examples from " + D.eval_source +
    ". Delta: candidate minus baseline on the same examples; interval: Tango's score interval (95%) of the paired " +
    "delta; p: one-sided McNemar mid-p that the candidate is worse; a cross slice shows each model's gap " +
    "(first slice minus second); a discovered slice shows its confirmation half, the half it was not found on.";
  $("metric").addEventListener("change", () => {
    state.metric = $("metric").value;
    state.sort = METRICS[state.metric].sort;
    state.dir = METRICS[state.metric].dir;
    render();
  });
  for (const [id, key] of [["kind", "kind"], ["feature", "feature"], ["search", "search"]]) {
    $(id).addEventListener("input", () => { state[key] = $(id).value; state.limit = PAGE; render(); });
  }
  $("min-examples").addEventListener("input", () => { state.min = Number($("min-examples").value) || 0; render(); });
  $("more").addEventListener("click", () => { state.limit = Infinity; render(); });
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.tabIndex = 0;
    const sortBy = () => {
      const key = th.dataset.sort;
      state.dir = state.sort === key ? -state.dir : key === "name" || key === "kind" ? 1 : th.dataset.dir === "desc" ? -1 : 1;
      state.sort = key;
      render();
    };
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", (event) => { if (event.key === "Enter") sortBy(); });
  }
  $("slices").querySelector("tbody").addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-id]");
    if (tr) select(tr.dataset.id);
  });
  $("slices").querySelector("tbody").addEventListener("keydown", (event) => {
    const tr = event.target.closest("tr[data-id]");
    if (tr && event.key === "Enter") select(tr.dataset.id);
  });
}

function visible() {
  const search = state.search.trim().toLowerCase();
  return D.rows.filter((r) =>
    (!state.kind || r.kind === state.kind) && (!state.feature || r.feature === state.feature) &&
    (!state.min || (num(r.n) && r.n >= state.min)) &&
    (!search || r.name.toLowerCase().includes(search) || r.id.toLowerCase().includes(search)));
}

function sorted(rows) {
  const key = SORT[state.sort], dir = state.dir;
  return rows.slice().sort((a, b) => {
    const x = key(a), y = key(b);
    const xm = x === null || x === undefined || (typeof x === "number" && !isFinite(x));
    const ym = y === null || y === undefined || (typeof y === "number" && !isFinite(y));
    if (xm || ym) return xm && ym ? a.o - b.o : xm ? 1 : -1;  // missing values last, either way
    if (x < y) return -dir;
    if (x > y) return dir;
    return a.o - b.o;
  });
}

function bar(row, scale) {
  const metric = METRICS[state.metric];
  const box = el("div", {class: "bar"});
  if (metric.model) {
    const [b, c] = trio(row);
    for (const [value, css] of [[b, "b"], [c, "c"]]) {
      const line = el("span", {class: "bar-" + css});
      line.style.width = num(value) && scale ? (100 * Math.abs(value) / scale).toFixed(1) + "%" : "0";
      box.append(line);
    }
    return box;
  }
  const value = metric.value(row);
  const line = el("span", {class: metric.signed ? (value < 0 ? "bar-neg" : "bar-pos") : "bar-c"});
  const share = num(value) && scale ? Math.abs(value) / scale : 0;
  line.style.width = (metric.signed ? 50 * share : 100 * share).toFixed(1) + "%";
  if (metric.signed) line.style.marginLeft = (value < 0 ? 50 - 50 * share : 50).toFixed(1) + "%";
  box.append(line);
  return box;
}

function cells(row) {
  const signed = row.kind === "cross" && modelOf() !== "examples";
  const plain = modelOf() === "examples" ? fi : signed ? s4 : f4;
  const [b, c, d] = trio(row);
  const interval = row.ci ? "[" + s4(row.ci[0]) + ", " + s4(row.ci[1]) + "]" : "-";
  return [
    ["name", row.name], ["kind", row.kind + (row.status ? ": " + row.status : "")],
    ["n", fi(row.n)], ["m0", plain(b)], ["m1", plain(c)], ["md", modelOf() === "examples" ? (num(d) ? (d >= 0 ? "+" : "") + d : "-") : s4(d)],
    ["ci", interval], ["p", fp(row.p)], ["nw", fi(row.nw)], ["nr", fi(row.nr)],
  ];
}

function render() {
  const rows = sorted(visible());
  const shown = rows.slice(0, state.limit);
  const metric = METRICS[state.metric];
  let scale = 0;
  for (const row of rows) {
    const values = metric.model ? trio(row).slice(0, 2) : [metric.value(row)];
    for (const v of values) if (num(v)) scale = Math.max(scale, Math.abs(v));
  }
  const body = document.createDocumentFragment();
  for (const row of shown) {
    const tr = el("tr", {"data-id": row.id, tabindex: "0", class: rowClass(row)});
    for (const [key, text] of cells(row)) {
      tr.append(el("td", {class: "c-" + key + (key === "name" ? " l" : key === "kind" ? " l k" : ""), text}));
    }
    tr.append(el("td", {class: "c-chart"}, bar(row, scale)));
    if (row.id === state.selected) tr.setAttribute("aria-selected", "true");
    body.append(tr);
  }
  const tbody = $("slices").querySelector("tbody");
  tbody.replaceChildren(body);
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === state.sort ? (state.dir > 0 ? "ascending" : "descending") : "none");
  }
  $("chart-head").textContent = metric.label;
  $("model-head").textContent = METRICS[modelOf()].label;
  $("metric").value = state.metric;
  $("count").textContent = "Showing " + shown.length + " of " + rows.length + " slices" +
    (rows.length < D.rows.length ? " (" + D.rows.length + " in all)" : "");
  $("more").hidden = shown.length >= rows.length;
  $("more").textContent = "Show all " + rows.length;
}

function rowClass(row) {
  if (modelOf() !== "accuracy") return null;
  if (row.status === "regressed" || (row.ci && row.ci[1] < 0)) return "worse";
  if (row.ci && row.ci[0] > 0) return "better";
  return null;
}

function select(id) {
  if (!byId.has(id)) return;
  state.selected = id;
  for (const tr of $("slices").querySelectorAll("tr[aria-selected]")) tr.removeAttribute("aria-selected");
  const tr = $("slices").querySelector('tr[data-id="' + CSS.escape(id) + '"]');
  if (tr) tr.setAttribute("aria-selected", "true");
  history.replaceState(null, "", "#slice=" + encodeURIComponent(id));
  showDetail(byId.get(id));
}
"""

START_SCRIPT = r"""
setUp();
render();
setUpSeries();
const wanted = decodeURIComponent((location.hash.match(/slice=([^&]*)/) || [])[1] || "");
// Wide, the worst slice is chosen at once; narrow (a pane beside TensorBoard), its panel opens on a click.
if (byId.has(wanted)) select(wanted);
else if (D.rows.length && !matchMedia("(max-width: 1100px)").matches) select(sorted(visible())[0].id);
document.body.dataset.ready = "1";
"""
