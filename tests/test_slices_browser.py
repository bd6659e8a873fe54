"""The slicing browser and its time series, as an analyst uses them: headless Chromium on real run folders."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from evalsuite.run.contract import load_changed, load_discovered, load_summary
from evalsuite.run.folder import RunDir
from reports.slices_examples import PER_SLICE
from reports.slices_page import slices_page
from tests.helpers import SEED, error_lines, run_command
from tests.test_views import Page, browser  # noqa: F401 - the browser fixture, launched as the report's tests launch it


@pytest.fixture(scope="module")
def sliced_run(tmp_path_factory, bundled) -> Path:
    """Sliced by two declared features and TFMA's cross slices, judged the wrong way round: slices lose, examples break."""
    import dataclasses

    from analysis.__main__ import main as analysis_main
    from evalsuite.data.files import save_npz
    from gates.__main__ import main as gate_main
    from pipeline.run import main as pipeline_main
    from reports.__main__ import main as reports_main

    root = tmp_path_factory.mktemp("sliced")
    small = bundled.subset(600, 300, SEED)
    pen = np.where(small.y_test == 7, "red", np.where(small.y_test % 2 == 0, "blue", "black"))
    half = (np.arange(len(small.y_test)) % 2).astype(np.int64)
    data = root / "pens.npz"
    save_npz(data, dataclasses.replace(small, features={"pen": pen, "half": half}))
    rules = root / "rules.toml"
    rules.write_text("[overall]\nmin_improvement = 0.0\n[per_class]\nmax_drop = 0.03\n[gap_to_overall]\nmax_gap = 0.5\n")
    run = root / "run"
    argv = ["--run-dir", str(run), "--rules", str(rules), "-q"]
    assert pipeline_main([*argv, "--data", str(data), "--epochs", "1", "2", "--seed", str(SEED), "--slice-by", "pen,half"]) == 0
    assert analysis_main([*argv, "--baseline", "epochs-2", "--candidate", "epochs-1"]) == 0
    assert gate_main(argv) == 1
    assert reports_main(["--run-dir", str(run), "-q"]) == 0
    return run


def _f(text: str) -> float | None:
    return None if text.strip() == "-" else float(text)


def _near(shown: str, value) -> bool:
    """Equal to the four decimals shown."""
    return (value is None and shown == "-") or (value is not None and abs(_f(shown) - value) <= 0.5e-4 + 1e-9)


def _table(view) -> list[dict]:
    """Each row of the slices table as it reads on screen: {column key: text}."""
    return view.page.eval_on_selector_all(
        "#slices tbody tr",
        "rows => rows.map(r => Object.fromEntries([...r.cells].map(c => [c.className.split(' ')[0].slice(2), c.textContent])))"
        " .map((cells, i) => ({...cells, id: rows[i].dataset.id}))",
    )


def _open(view, path: Path) -> float:
    view.page.goto(path.as_uri())
    view.page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    return view.page.evaluate("performance.now()")


def _check_row(row: dict, summary: dict) -> None:
    """A row on screen says what summary.json says, to the digits shown; p as the gate computes it from the counts."""
    from evalsuite.rules.paired_stats import worse_p_value

    sid = row["id"]
    counts, delta = summary["paired"][sid], summary["deltas"][sid]
    assert (int(row["n"]), int(row["nw"]), int(row["nr"])) == (summary["models"]["candidate"][sid]["examples"], counts["newly_wrong"], counts["newly_right"]), row
    for key, value in (("m0", summary["models"]["baseline"][sid]["accuracy"]), ("m1", summary["models"]["candidate"][sid]["accuracy"]), ("md", delta["accuracy"])):
        assert _near(row[key], value), (key, row, value)
    low, high = (float(x) for x in row["ci"].strip("[]").split(","))
    assert abs(low - delta["accuracy_ci"][0]) <= 5.1e-5 and abs(high - delta["accuracy_ci"][1]) <= 5.1e-5, row
    p = worse_p_value(counts["newly_right"], counts["newly_wrong"])
    assert abs(float(row["p"]) - p) <= max(5.1e-4, 0.051 * p), row


def test_the_report_stage_writes_the_browser_as_one_file_that_asks_for_nothing(tiny_run):
    page = (tiny_run / "report" / "slices.html").read_text()
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["stages"]["report"]["outputs"]["slices"] == "report/slices.html"
    assert "https://" not in page and page.count("http://") == 1  # the SVG namespace, which is a name, not a request
    assert "Content-Security-Policy" in page and "default-src 'none'" in page and "summary.json (TFMA" in page
    run = RunDir(tiny_run)  # drawn again from the same files: the same bytes
    assert slices_page(run, load_summary(run.analysis_dir), load_changed(run.analysis_dir), load_discovered(run.analysis_dir)) == page


@pytest.mark.slow
@pytest.mark.browser
def test_an_analyst_finds_the_slices_that_lost_most_and_sees_their_failures(browser, sliced_run):  # noqa: F811
    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import recorded_spec

    summary, changed = load_summary(sliced_run / "analysis"), load_changed(sliced_run / "analysis")
    view = Page(browser)
    _open(view, sliced_run / "report" / "slices.html")
    rows = _table(view)
    found = load_discovered(sliced_run / "analysis")["slices"]
    assert len(rows) == len(summary["models"]["candidate"]) + len(summary["cross_slices"]) + len(found)
    # Every number on screen is summary.json's (TFMA's, flattened by the analysis).
    base = summary["models"]["baseline"]
    for row in rows:
        if row["id"] in summary["cross_slices"]:
            second = row["id"].split(" vs ")[1]
            assert _near(row["m1"], summary["cross_slices"][row["id"]]["accuracy_gap"])
            assert _near(row["m0"], base["overall"]["accuracy"] - base[second]["accuracy"])
        elif not row["id"].startswith("discovered:"):
            _check_row(row, summary)
    # Sorted by delta, most lost first; clicking the header turns it round, and again back.
    deltas = [_f(row["md"]) for row in rows]
    assert deltas == sorted(deltas, key=lambda d: (d is None, d))
    view.page.click("#delta-head")
    assert [_f(r["md"]) for r in _table(view) if r["md"] != "-"] == sorted((d for d in deltas if d is not None), reverse=True)
    view.page.click("#delta-head")
    assert _f(_table(view)[0]["md"]) == min(d for d in deltas if d is not None) < 0
    # One feature: its values only.
    view.page.select_option("#feature", "pen")
    pens = _table(view)
    assert sorted(r["id"] for r in pens) == summary["feature_slices"]["pen"]
    chosen = max(pens, key=lambda r: (int(r["nw"]), r["id"]))
    view.page.click(f"#slices tr[data-id='{chosen['id']}']")
    assert view.page.locator("#detail-title").inner_text() == chosen["id"]
    # Its failures: the newly wrong examples written in that pen, most confident first, both predictions on each.
    spec = recorded_spec(summary["eval_data"], "summary")
    _, labels, _, features = read_examples(str(sliced_run / "data" / "eval-*.tfrecord"), spec, ("pen",))
    value = chosen["id"].split("=")[1]
    wrong = sorted(
        (e for e in changed["examples"] if e["change"] == "newly_wrong" and features["pen"][e["index"]] == value),
        key=lambda e: (-e["candidate"]["confidence"], e["index"]),
    )
    figures = view.page.locator("#examples .grid[data-kind=newly_wrong] figure")
    assert figures.count() == min(PER_SLICE, len(wrong)) > 0
    shown = [int(i) for i in figures.evaluate_all("fs => fs.map(f => f.dataset.index)")]
    assert shown == [e["index"] for e in wrong[:PER_SLICE]]
    first = figures.first.inner_text()
    assert summary["baseline"]["label"] in first and summary["candidate"]["label"] in first
    widths = figures.evaluate_all("fs => fs.map(f => f.querySelector('img').naturalWidth)")
    assert widths == [28] * len(widths)
    view.shot("slices.png")
    # A class: its row of each model's confusion matrix, as summary.json holds it.
    view.page.select_option("#feature", "label")
    view.page.click("#slices tr[data-id='label=7']")
    for role in ("baseline", "candidate"):
        cells = view.page.locator(f"#confusion table[data-role={role}] tr").nth(1).locator("td").all_inner_texts()
        assert [int(c or 0) for c in cells] == summary["confusion_matrices"][role]["overall"][7]
    assert view.errors == [] and all(url.startswith(("file:", "data:")) for url in view.requests), view.requests


def test_tfmas_own_output_gives_the_same_rows_and_every_slices_matrix(sliced_run):
    import tensorflow_model_analysis as tfma

    from reports.slices_data import numbers_from_summary, slice_rows
    from reports.slices_tfma import disagreements, numbers_from_tfma

    summary, discovered = load_summary(sliced_run / "analysis"), load_discovered(sliced_run / "analysis")
    theirs, ours = numbers_from_tfma(sliced_run / "analysis" / "tfma"), numbers_from_summary(summary)
    assert disagreements(theirs, ours) == []
    rows = [json.loads(json.dumps(slice_rows(summary, numbers, discovered)), parse_float=lambda x: round(float(x), 6)) for numbers in (theirs, ours)]
    assert rows[0] == rows[1]
    assert set(theirs["confusion"]) == {"overall", *(s for sids in summary["feature_slices"].values() for s in sids)}
    for sid, by_role in theirs["confusion"].items():
        assert sum(c for _, _, c in by_role["candidate"]) == summary["models"]["candidate"][sid]["examples"]
    # A class's own matrix in TFMA's output is its row of the overall one (which is why the page keeps only that).
    result = tfma.load_eval_result(str(sliced_run / "analysis" / "tfma"), model_name="candidate")
    plot = dict(result.plots)[(("label", 7),)][""][""]["multiClassConfusionMatrixAtThresholds"]["matrices"][0]["entries"]
    row = np.bincount([e.get("predictedClassId", 0) for e in plot], [e["numWeightedExamples"] for e in plot], minlength=10)
    assert row.astype(int).tolist() == summary["confusion_matrices"]["candidate"]["overall"][7]


def test_the_feature_reader_and_the_thumbnails_agree_with_tensorflow(sliced_run, tmp_path):
    import io

    from PIL import Image

    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import MNIST
    from reports.slices_examples import feature_values, png, thumbnail

    pattern = str(sliced_run / "data" / "eval-*.tfrecord")
    images, _, _, features = read_examples(pattern, MNIST, ("pen", "half"))
    mine = feature_values(pattern, ("pen", "half"), range(len(images)))
    assert [mine[i]["pen"] for i in range(len(images))] == list(features["pen"])
    assert [mine[i]["half"] for i in range(len(images))] == [str(v) for v in features["half"]]
    for pixels in (images[0], np.dstack([images[1]] * 3), np.zeros((200, 130, 3), np.uint8) + 7):
        shown = np.asarray(Image.open(io.BytesIO(png(thumbnail(pixels)))))
        assert np.array_equal(shown, thumbnail(pixels)) and max(shown.shape[:2]) <= 64
    assert np.array_equal(thumbnail(images[0]), images[0]) and thumbnail(np.zeros((200, 130, 3), np.uint8)).shape == (50, 32, 3)
    assert png(images[0]) == png(images[0].copy())  # the same bytes every time


def _registry(run: Path, summary: dict, folder: Path) -> list[dict]:
    """Three blessings, records as gates/bless.py writes them: this run's two models, then one judged on other data."""
    from evalsuite import blessing, registry
    from evalsuite.data.class_names import title

    def record(role: str, shift: float = 0.0, data: str | None = None) -> dict:
        accuracy = {title(sid, None): round(m["accuracy"] + shift, 6) for sid, m in summary["models"][role].items()}
        data_record = {**{k: summary["eval_data"][k] for k in ("source", "examples")}, "fingerprint": data or summary["eval_data"]["fingerprint"]}
        return {"candidate": summary[role]["label"], "accuracy": accuracy, "eval_data": data_record, "git_commit": None}

    for role, shift, data in (("baseline", 0.0, None), ("candidate", 0.0, None), ("baseline", -0.05, "0123456789abcdef")):
        blessing.bless(folder, run / "models" / summary[role]["label"], None, record(role, shift, data))
    return [entry.record for entry in reversed(registry.entries(folder))]


@pytest.mark.slow
@pytest.mark.browser
def test_the_view_serves_the_browser_and_the_time_series_beside_tensorboard(browser, sliced_run, tmp_path):  # noqa: F811
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    run = tmp_path / "run"
    shutil.copytree(sliced_run, run, ignore=shutil.ignore_patterns(".lock"))
    summary = load_summary(run / "analysis")
    records = _registry(run, summary, tmp_path / "registry")
    process = subprocess.Popen(
        [sys.executable, "-m", "reports", "view", "--run-dir", str(run), "--registry", str(tmp_path / "registry")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        urls = dict(process.stdout.readline().strip().partition(": ")[::2] for _ in range(4))
        assert list(urls) == ["tensorboard", "report", "side by side", "slices"] and urls["slices"].endswith("/slices.html"), urls
        # TensorBoard: each entry's accuracy at its place in blessing order, this run last.
        accumulator = EventAccumulator(str(run / "logs" / "registry"), size_guidance={"tensors": 0})
        accumulator.Reload()
        events = accumulator.Tensors("registry/accuracy/overall")
        expected = [r["accuracy"]["overall"] for r in records] + [summary["models"]["candidate"]["overall"]["accuracy"]]
        assert [e.step for e in events] == [1, 2, 3, 4]
        assert [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events] == pytest.approx(expected, abs=1e-6)
        tags = json.loads(urllib.request.urlopen(urls["tensorboard"] + "data/plugin/scalars/tags", timeout=30).read())
        assert "registry/accuracy/overall" in tags["registry"] and "tfma/accuracy/overall" in tags["epochs-1/tfma"]
        # The side-by-side page links the browser into its left pane.
        both = Page(browser)
        both.page.goto(urls["side by side"])
        both.page.click("#slices-link")
        left = both.page.frame_locator("iframe[title=report]")
        left.locator("body[data-ready='1']").wait_for(timeout=30_000)
        assert left.locator("#slices tbody tr").count() > 20
        # TFMA's own output, read in a process of the view's own, replaces summary.json's reading.
        deadline = time.monotonic() + 300
        while b"tfma.load_eval_result" not in urllib.request.urlopen(urls["slices"], timeout=30).read():
            assert time.monotonic() < deadline and process.poll() is None, "TFMA's output never arrived"
            time.sleep(2)
        view = Page(browser)
        view.page.goto(urls["slices"])
        view.page.wait_for_selector("body[data-ready='1']")
        assert "TFMA's own output" in view.page.locator("#source").inner_text()
        view.page.click("#slices tr[data-id='pen=red']")
        cells = view.page.locator("#confusion table[data-role=candidate] td").all_inner_texts()
        assert sum(int(c or 0) for c in cells) == summary["models"]["candidate"]["pen=red"]["examples"]
        for row in _table(view):
            if " vs " not in row["id"] and not row["id"].startswith("discovered:"):
                _check_row(row, summary)
        # The time series: every entry, then this run, in the chart's table.
        view.page.select_option("#series", "digit 7")
        table = view.page.locator("#series-table tr").all_inner_texts()
        assert len(table) == 1 + 4 and "this run" in table[-1] and summary["candidate"]["label"] in table[-1]
        assert view.page.locator("#series-chart circle").count() == 8
        view.shot("slices-time-series.png")
        assert view.errors == [] and both.errors == [], (view.errors, both.errors)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    assert "stopped" in process.stdout.read()
    assert error_lines(process.stderr.read()) == []


def test_a_missing_registry_is_one_line_and_exit_2(run_copy, tmp_path):
    done = run_command("reports", "view", "--run-dir", str(run_copy), "--registry", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and done.stdout == ""
    assert error_lines(done.stderr) == [f"error: {tmp_path / 'nowhere'}: no such registry folder (for a first run, create it empty)"]


def test_a_changed_example_the_data_do_not_hold_is_one_line_and_exit_2(run_copy):
    """The page is drawn by the report stage: a changed example beyond the evaluation data stops it in one line."""
    path = run_copy / "analysis" / "changed.json"
    changed = json.loads(path.read_text())
    changed["examples"].append({**changed["examples"][0], "index": 10**6, "change": "newly_wrong"})
    path.write_text(json.dumps(changed))
    done = run_command("reports", "--run-dir", str(run_copy))
    assert done.returncode == 2 and len(error_lines(done.stderr)) == 1, done.stderr
    assert "not the example 1000000 the analysis listed" in done.stderr


def test_an_empty_or_missing_tfma_output_is_one_line_not_an_empty_table(tmp_path):
    from evalsuite.errors import InputError
    from reports.slices_tfma import numbers_from_tfma

    for folder, said in ((tmp_path / "nowhere", "no TFMA output here"), (tmp_path, "holds no metrics for the baseline")):
        with pytest.raises(InputError, match=said):
            numbers_from_tfma(folder)  # tfma.load_eval_result itself returns an empty result for both
