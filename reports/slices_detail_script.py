"""The slicing browser's chosen slice (its numbers, confusion matrix and changed images) and the time series.

Plain JavaScript after reports/slices_script.py's (it uses its helpers `el`,
`D`, `$` and the formatters); every piece of text is set with textContent.
"""

DETAIL_SCRIPT = r"""
const MATRIX_MAX = 20;  // classes drawn as a full matrix; more are listed as their largest confusions
const className = (c) => (D.classes[c] === undefined ? "class " + c : D.classes[c]);

function showDetail(row) {
  const box = $("detail");
  box.replaceChildren();
  if (!row) return;
  const close = el("button", {type: "button", class: "close", "aria-label": "close", text: "\u00d7"});
  close.addEventListener("click", () => { state.selected = null; box.replaceChildren(); history.replaceState(null, "", "#"); render(); });
  box.append(close, el("h2", {id: "detail-title", text: row.name}));
  const what = {overall: "every evaluation example", class: "examples of one class", feature: "a value of the declared feature " + row.feature,
    cross: "TFMA's cross slice: each model's gap, the first slice minus the second", discovered: "found by discovery (" + row.feature + ")"};
  box.append(el("p", {class: "muted", text: (what[row.kind] || row.kind) + (row.id !== row.name ? " \u00b7 " + row.id : "")}));
  if (row.status) box.append(el("p", {class: row.status === "regressed" ? "bad" : "muted", text: "Status: " + row.status}));
  const numbers = el("table", {id: "detail-numbers"});
  numbers.append(el("tr", {}, el("th", {class: "l", text: "model"}), el("th", {text: "examples"}),
    el("th", {text: row.kind === "cross" ? "accuracy gap" : "accuracy"}), el("th", {text: "cross-entropy"})));
  const rows = [[D.labels.baseline, row.nb, row.acc[0], row.ce[0]], [D.labels.candidate, row.n, row.acc[1], row.ce[1]]];
  const fmt = row.kind === "cross" ? s4 : f4;
  for (const [label, n, acc, ce] of rows) {
    numbers.append(el("tr", {}, el("td", {class: "l", text: label}), el("td", {text: fi(n)}), el("td", {text: fmt(acc)}), el("td", {text: fmt(ce)})));
  }
  numbers.append(el("tr", {}, el("td", {class: "l", text: "delta"}), el("td", {text: ""}), el("td", {id: "detail-delta", text: s4(row.d)}),
    el("td", {text: num(row.ce[0]) && num(row.ce[1]) ? s4(row.ce[1] - row.ce[0]) : "-"})));
  box.append(numbers);
  if (num(row.nw)) {
    box.append(el("p", {text: "Paired: " + fi(row.br) + " both right, " + fi(row.nw) + " newly wrong, " + fi(row.nr) +
      " newly right, " + fi(row.bw) + " both wrong; 95% interval of the delta " +
      (row.ci ? "[" + s4(row.ci[0]) + ", " + s4(row.ci[1]) + "]" : "-") + ", p (worse) " + fp(row.p) + "."}));
  }
  if (row.halves) box.append(halves(row));
  if (row.kind === "cross") {
    const [first, second] = row.id.split(" vs ");
    const links = el("p", {}, "Its slices: ");
    for (const id of [first, second]) {
      if (byId.has(id)) links.append(el("button", {type: "button", class: "link", "data-goto": id, text: byId.get(id).name}), " ");
    }
    links.addEventListener("click", (event) => { if (event.target.dataset.goto) select(event.target.dataset.goto); });
    box.append(links);
    return;
  }
  box.append(el("h3", {text: "Confusion matrix"}), confusion(row));
  box.append(changedImages(row));
}

function halves(row) {
  const table = el("table", {id: "detail-halves"});
  table.append(el("tr", {}, ...["half", "examples", "newly wrong", "newly right", "delta", "p (worse)"].map(
    (text, i) => el("th", {class: i ? null : "l", text}))));
  for (const name of ["discovery", "confirmation"]) {
    const h = row.halves[name];
    const interval = h.interval ? "95% interval [" + s4(h.interval[0]) + ", " + s4(h.interval[1]) + "]" : null;
    table.append(el("tr", {}, el("td", {class: "l", text: name}), el("td", {text: fi(h.examples)}), el("td", {text: fi(h.newly_wrong)}),
      el("td", {text: fi(h.newly_right)}), el("td", {text: s4(h.delta), title: interval}), el("td", {text: fp(h.p_value)})));
  }
  return table;
}

function cellsOf(row) {
  if (D.confusion[row.id]) return D.confusion[row.id];
  const match = /^label=(\d+)$/.exec(row.id);
  const overall = D.confusion.overall;
  if (!match || !overall) return null;
  const c = Number(match[1]);
  const out = {};
  for (const role of ["baseline", "candidate"]) if (overall[role]) out[role] = overall[role].filter((cell) => cell[0] === c);
  return out;
}

function confusion(row) {
  const found = cellsOf(row);
  const box = el("div", {id: "confusion"});
  if (!found || !found.candidate) {
    box.append(el("p", {class: "muted", text: row.kind === "discovered"
      ? "TFMA computed no matrix for this slice: it was found after the evaluation, among the examples."
      : "This slice's matrix is in TFMA's output: python -m reports view reads it there."}));
    return box;
  }
  const K = D.classes.length;
  const classRow = /^label=(\d+)$/.exec(row.id);
  const counts = {};
  for (const role of ["baseline", "candidate"]) {
    counts[role] = new Map();
    for (const [t, p, c] of found[role] || []) counts[role].set(t + "," + p, c);
  }
  const get = (role, t, p) => counts[role].get(t + "," + p) || 0;
  if (K <= MATRIX_MAX) {
    const trues = classRow ? [Number(classRow[1])] : [...Array(K).keys()];
    for (const role of ["baseline", "candidate"]) {
      const table = el("table", {class: "matrix", "data-role": role});
      table.append(el("caption", {text: D.labels[role] + " (rows: true class, columns: predicted)"}));
      table.append(el("tr", {}, el("th", {text: ""}), ...[...Array(K).keys()].map((p) => el("th", {text: String(p), title: className(p)}))));
      let most = 1;
      for (const t of trues) for (let p = 0; p < K; p++) most = Math.max(most, get(role, t, p));
      for (const t of trues) {
        const tr = el("tr", {}, el("th", {text: String(t), title: className(t)}));
        for (let p = 0; p < K; p++) {
          const value = get(role, t, p);
          const other = get(role === "baseline" ? "candidate" : "baseline", t, p);
          const td = el("td", {text: value ? String(value) : "", title: className(t) + " \u2192 " + className(p) + ": " + value});
          if (value) td.style.background = (t === p ? "rgba(30,125,52," : "rgba(179,38,30,") + (0.12 + 0.5 * value / most).toFixed(2) + ")";
          if (role === "candidate" && t !== p && value > other) td.classList.add("more");
          tr.append(td);
        }
        table.append(tr);
      }
      box.append(table);
    }
    box.append(el("p", {class: "muted", text: "Outlined: an error the candidate makes more often than the baseline."}));
    return box;
  }
  const pairs = new Map();
  for (const role of ["baseline", "candidate"]) for (const [t, p, c] of found[role] || []) if (t !== p) pairs.set(t + "," + p, [t, p]);
  const listed = [...pairs.values()].map(([t, p]) => [t, p, get("baseline", t, p), get("candidate", t, p)])
    .sort((a, b) => b[3] - a[3] || b[3] - b[2] - (a[3] - a[2]) || a[0] - b[0] || a[1] - b[1]).slice(0, 15);
  const table = el("table", {class: "confused"});
  table.append(el("tr", {}, el("th", {class: "l", text: "true \u2192 predicted"}), el("th", {text: D.labels.baseline}), el("th", {text: D.labels.candidate})));
  for (const [t, p, b, c] of listed) {
    table.append(el("tr", {class: c > b ? "worse" : null}, el("td", {class: "l", text: className(t) + " \u2192 " + className(p)}),
      el("td", {text: String(b)}), el("td", {text: String(c)})));
  }
  box.append(el("p", {class: "muted", text: "The " + listed.length + " largest confusions in this slice (of " + K + " classes)."}), table);
  return box;
}

function changedImages(row) {
  const box = el("div", {id: "examples"});
  const entry = D.changed[row.id];
  const kinds = [["newly_wrong", "Newly wrong"], ["newly_right", "Newly right"], ["both_right", "Members both models get right"]];
  let any = false;
  for (const [kind, heading] of kinds) {
    const shown = (entry && entry.shown[kind]) || [];
    const total = kind === "both_right" ? shown.length : (entry && entry.counts[kind]) || 0;
    if (!total && kind === "both_right") continue;
    any = true;
    box.append(el("h3", {text: heading + ": " + total + (row.kind === "discovered" && kind !== "both_right" ? " among its members (both halves)" : "") +
      (shown.length < total ? " (" + shown.length + " shown)" : "")}));
    const grid = el("div", {class: "grid", "data-kind": kind});
    for (const index of shown) grid.append(figure(index));
    if (shown.length) box.append(grid);
  }
  if (!any) box.append(el("p", {class: "muted", text: "No changed examples."}));
  return box;
}

function figure(index) {
  const [label, change, base, baseConf, cand, candConf, png] = D.examples[String(index)];
  const conf = (c) => (num(c) ? " (" + c.toFixed(2) + ")" : "");
  const img = el("img", {src: "data:image/png;base64," + png, alt: "example " + index + ", a " + className(label)});
  if (D.pixelated) img.classList.add("px");
  const caption = el("figcaption", {});
  caption.append(el("span", {text: "#" + index + " true " + className(label)}), el("br"),
    el("span", {class: base === label ? "good" : "bad", text: D.labels.baseline + ": " + className(base) + conf(baseConf)}), el("br"),
    el("span", {class: cand === label ? "good" : "bad", text: D.labels.candidate + ": " + className(cand) + conf(candConf)}));
  return el("figure", {class: "ex", "data-index": String(index), "data-change": change}, img, caption);
}

function setUpSeries() {
  const H = D.history;
  if (!H) return;
  $("time-series").hidden = false;
  $("series-note").textContent = "Each blessed model in " + H.folder + ", in blessing order, then this run's candidate (step " +
    H.points.length + "). A hollow point was judged on other evaluation data than this run's.";
  for (const [key, name] of H.series) $("series").append(el("option", {value: name, text: name}));
  $("series").addEventListener("change", () => drawSeries($("series").value));
  const overall = H.series.find(([key]) => key === "overall");
  drawSeries(overall ? overall[1] : H.series[0][1]);
  if (H.series.length <= MATRIX_MAX + 1) {
    const grid = $("series-grid");
    for (const [key, name] of H.series) {
      const cell = el("button", {type: "button", class: "spark", "data-series": name}, el("span", {text: name}), chart([name], 150, 50, false));
      cell.addEventListener("click", () => drawSeries(name));
      grid.append(cell);
    }
  }
}

function drawSeries(name) {
  const H = D.history;
  $("series").value = name;
  const names = name === "overall" ? ["overall"] : ["overall", name];
  const legend = el("p", {class: "muted", id: "series-legend"}, el("span", {class: names.length > 1 ? "key-overall" : "key-main", text: "\u2014 overall"}));
  if (names.length > 1) legend.append("  ", el("span", {class: "key-main", text: "\u2014 " + name}));
  $("series-chart").replaceChildren(chart(names, 640, 220, true), legend);
  const table = el("table", {id: "series-table"});
  table.append(el("tr", {}, ...["step", "entry", "blessed (UTC)", "model", "evaluation data", ...names].map((t, i) => el("th", {class: i < 5 ? "l" : null, text: t}))));
  for (const point of H.points) {
    table.append(el("tr", {}, el("td", {class: "l", text: String(point.step)}), el("td", {class: "l", text: point.entry}),
      el("td", {class: "l", text: point.blessed_at || "-"}), el("td", {class: "l", text: point.model || "-"}),
      el("td", {class: "l", text: point.same_data ? "this run's" : "other (" + fi(point.examples) + " examples)"}),
      ...names.map((n) => el("td", {text: f4(point.accuracy[n])}))));
  }
  $("series-values").replaceChildren(table);
}

function chart(names, w, h, axes) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  const node = (tag, attrs) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  const points = D.history.points;
  const values = points.flatMap((p) => names.map((n) => p.accuracy[n])).filter(num);
  let low = Math.min(...values), high = Math.max(...values);
  if (!values.length) { low = 0; high = 1; }
  if (high - low < 0.02) { low -= 0.01; high += 0.01; }
  const left = axes ? 52 : 4, right = 8, top = 8, bottom = axes ? 26 : 4;
  const x = (step) => left + (points.length > 1 ? (step - 1) / (points.length - 1) : 0.5) * (w - left - right);
  const y = (v) => top + (1 - (v - low) / (high - low)) * (h - top - bottom);
  if (axes) {
    for (const v of [low, (low + high) / 2, high]) {
      svg.append(node("line", {x1: left, x2: w - right, y1: y(v), y2: y(v), class: "grid-line"}));
      const label = node("text", {x: left - 4, y: y(v) + 4, "text-anchor": "end"}); label.textContent = v.toFixed(3); svg.append(label);
    }
    for (const p of points) { const label = node("text", {x: x(p.step), y: h - 8, "text-anchor": "middle"}); label.textContent = String(p.step); svg.append(label); }
  }
  names.forEach((n, i) => {
    const css = names.length > 1 && i === 0 ? "series-overall" : "series-main";
    const known = points.filter((p) => num(p.accuracy[n]));
    svg.append(node("polyline", {points: known.map((p) => x(p.step) + "," + y(p.accuracy[n])).join(" "), class: css}));
    for (const p of known) {
      const dot = node("circle", {cx: x(p.step), cy: y(p.accuracy[n]), r: axes ? 4 : 2.5, class: css + (p.same_data ? "" : " other")});
      const tip = node("title", {}); tip.textContent = n + " at step " + p.step + " (" + p.entry + "): " + p.accuracy[n].toFixed(4);
      dot.append(tip);
      svg.append(dot);
    }
  });
  return svg;
}
"""
