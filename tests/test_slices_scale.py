"""The slicing browser at scale: 1,000 classes and a feature of 50 values stay small, fast and inert in Chromium."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from evalsuite.run.folder import RunDir
from reports.slices_examples import PER_SLICE
from reports.slices_page import slices_page
from tests.test_slices_browser import _open, _table
from tests.test_views import Page, browser  # noqa: F401 - the browser fixture, launched as the report's tests launch it

HOSTILE = '</script><img src=x onerror="document.body.dataset.pwned=1">'


def _large_run(root: Path, classes: int = 1000, per_class: int = 10, values: int = 50) -> tuple:
    """A run folder of 1,000 classes and a feature of 50 values, its files as the analysis writes them, its numbers
    counted from one set of per-example outcomes (10,000 8x8 images, about 15% of the outcomes changed)."""
    from evalsuite.data.examples import shard_count, write_examples
    from evalsuite.rules import paired_stats

    rng = np.random.default_rng(0)
    n = classes * per_class
    labels, site = np.repeat(np.arange(classes), per_class), np.array([f"site{i % values:02d}" for i in range(n)])
    base_right = rng.random(n) < 0.8
    cand_right = np.where(rng.random(n) < 0.15, ~base_right, base_right)
    predicted = {role: np.where(right, labels, (labels + rng.integers(1, classes, n)) % classes) for role, right in (("baseline", base_right), ("candidate", cand_right))}
    # The writer deals examples out to its shards in turn; an example's index is its position across the shards.
    written = np.argsort(np.concatenate([np.arange(s, n, shard_count(n)) for s in range(shard_count(n))]))
    write_examples(root / "data", rng.integers(0, 256, (n, 8, 8), dtype=np.uint8), labels[written], {"site": site[written]})
    masks = {"overall": np.ones(n, bool), **{f"label={c}": labels == c for c in range(classes)}}
    masks |= {f"site=site{v:02d}": site == f"site{v:02d}" for v in range(values)}
    models, paired, deltas = {"baseline": {}, "candidate": {}}, {}, {}
    for sid, m in masks.items():
        cells = {"both_right": base_right & cand_right, "newly_right": ~base_right & cand_right, "newly_wrong": base_right & ~cand_right, "both_wrong": ~base_right & ~cand_right}
        paired[sid] = {cell: int(np.sum(mask & m)) for cell, mask in cells.items()}
        for role, right in (("baseline", base_right), ("candidate", cand_right)):
            models[role][sid] = {"examples": int(m.sum()), "accuracy": float(right[m].mean()), "crossentropy": float(1 - right[m].mean())}
        low, high = paired_stats.tango_interval(paired[sid]["newly_right"], paired[sid]["newly_wrong"], int(m.sum()))
        deltas[sid] = {"accuracy": models["candidate"][sid]["accuracy"] - models["baseline"][sid]["accuracy"], "accuracy_ci": [round(low, 6), round(high, 6)]}
    confusion = {}
    for role in ("baseline", "candidate"):
        matrix = np.zeros((classes, classes), int)
        np.add.at(matrix, (labels, predicted[role]), 1)
        confusion[role] = {"overall": matrix.tolist()}
    names = [HOSTILE] + [f"class {c}" for c in range(1, classes)]
    spec = {"height": 8, "width": 8, "channels": 1, "num_classes": classes, "class_names": names}
    summary = {
        "baseline": {"label": "epochs-1"}, "candidate": {"label": "epochs-2"}, "models": models, "paired": paired, "deltas": deltas,
        "eval_data": {"examples": n, "source": "synthetic", "class_names": names, "data_spec": spec, "slice_features": {"site": {}}},
        "slices": ["overall"] + [f"label={c}" for c in range(classes)], "feature_slices": {"site": [f"site=site{v:02d}" for v in range(values)]},
        "cross_slices": {f"overall vs label={c}": {"accuracy_gap": models["candidate"]["overall"]["accuracy"] - models["candidate"][f"label={c}"]["accuracy"]} for c in range(classes)},
        "confusion_matrices": confusion,
    }  # fmt: skip
    confidence = np.round(rng.random(n), 4)
    changed = {"pattern": "data/eval-*.tfrecord", "counts": {}, "examples": [
        {"index": int(i), "label": int(labels[i]), "change": "newly_right" if cand_right[i] else "newly_wrong",
         "baseline": {"class": int(predicted["baseline"][i]), "confidence": float(confidence[i])},
         "candidate": {"class": int(predicted["candidate"][i]), "confidence": float(1 - confidence[i])}}
        for i in np.flatnonzero(base_right != cand_right)]}  # fmt: skip
    found = []
    for key, members in (("dark", np.flatnonzero(labels % 7 == 3)), ("region-2", np.flatnonzero(site == "site07"))):
        halves = {}
        for half, chosen in (("discovery", members[::2]), ("confirmation", members[1::2])):
            right, wrong = int(np.sum(~base_right[chosen] & cand_right[chosen])), int(np.sum(base_right[chosen] & ~cand_right[chosen]))
            low, high = paired_stats.tango_interval(right, wrong, len(chosen))
            halves[half] = {"examples": len(chosen), "newly_right": right, "newly_wrong": wrong, "both_right": int(np.sum(base_right[chosen] & cand_right[chosen])),
                            "p_value": paired_stats.worse_p_value(right, wrong), "delta": (right - wrong) / len(chosen), "interval": [low, high]}  # fmt: skip
        both = [{"index": int(i), "label": int(labels[i])} for i in members if base_right[i] and cand_right[i]][:8]
        found.append({"id": key, "description": f"the {key} ones", "kind": "property", "class": None, "members": members.tolist(),
                      "both_right_examples": both, "status": "regressed" if key == "dark" else "not confirmed", **halves})  # fmt: skip
    return RunDir(root), summary, changed, {"slices": found}


@pytest.mark.browser
def test_1000_classes_and_50_feature_values_stay_small_fast_and_inert(browser, tmp_path):  # noqa: F811
    run, summary, changed, discovered = _large_run(tmp_path / "large")
    started = time.perf_counter()
    page = slices_page(run, summary, changed, discovered)
    built = time.perf_counter() - started
    path = tmp_path / "slices.html"
    path.write_text(page)
    print(f"1,000 classes: page {path.stat().st_size / 1e6:.2f} MB, built in {built:.1f}s")
    assert path.stat().st_size < 5_000_000
    view = Page(browser)
    print(f"1,000 classes: loaded and drawn in {(loaded := _open(view, path)):.0f} ms")
    # 2 s is the target on an idle machine (docs/analysts.md); the bound leaves a loaded CI machine room
    # and still fails a page that draws every row or every image at once.
    assert loaded < 10_000
    assert view.page.locator("#count").inner_text() == f"Showing 300 of {1 + 1000 + 50 + 1000 + 2} slices"
    view.page.select_option("#feature", "site")
    assert len(_table(view)) == 50
    view.page.select_option("#feature", "")
    view.page.fill("#min-examples", "150")  # overall, the 50 sites of 200 and the discovered slice of 715 (class slices hold 10)
    assert sorted(r["kind"].split(":")[0] for r in _table(view)) == ["discovered"] + ["feature"] * 50 + ["overall"]
    view.page.fill("#min-examples", "0")
    view.page.select_option("#kind", "class")
    view.page.click("#more")
    rows = _table(view)
    assert len(rows) == 1000 and rows[0]["md"] == f"{min(summary['deltas'][f'label={c}']['accuracy'] for c in range(1000)):.4f}"
    view.page.fill("#search", "label=0")
    assert [r["name"] for r in _table(view)] == [HOSTILE]  # text, never markup
    view.page.fill("#search", "")
    view.page.click(f"#slices tr[data-id='{rows[0]['id']}']")
    assert 0 < view.page.locator("#confusion table.confused tr").count() <= 16
    # Discovered slices: their confirmation half in the table; both halves, their failures and members beside.
    view.page.select_option("#kind", "discovered")
    assert sorted(r["id"] for r in _table(view)) == ["discovered:dark", "discovered:region-2"]
    view.page.click("#slices tr[data-id='discovered:dark']")
    assert view.page.locator("#detail-halves tr").count() == 3
    half = discovered["slices"][0]["confirmation"]
    assert view.page.locator("#detail-numbers td").nth(2).inner_text() == f"{(half['both_right'] + half['newly_wrong']) / half['examples']:.4f}"
    assert view.page.locator("#examples .grid[data-kind=both_right] figure").count() == 8
    assert view.page.locator("#examples .grid[data-kind=newly_wrong] figure").count() == PER_SLICE
    assert view.page.evaluate("document.body.dataset.pwned") is None
    view.shot("slices-1000-classes.png")
    assert view.errors == [] and all(url.startswith(("file:", "data:")) for url in view.requests)
