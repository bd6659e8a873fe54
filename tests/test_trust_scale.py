"""Many classes at a cost of K^2, a comment that shows only this run's finished numbers, views that answer only
their own host name."""

from __future__ import annotations

import http.client
import json
import pickle
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import SEED, error_lines, predict_probabilities, run_command

Inputs = namedtuple("Inputs", "label prediction example_weight")


# 1. The documented maximum of classes, at a cost of K^2 ---------------------------------------------------------


def test_a_class_slice_keeps_one_row_of_the_confusion_matrix_not_a_matrix():
    """At 1,000 classes a dense matrix per slice was 16 MB per accumulator, times 1,001 slices."""
    from analysis.fused import CONFUSION_PLOT, _FusedCombiner, _value

    classes, n = 1000, 50
    rng = np.random.default_rng(SEED)
    labels = np.full(n, 7)  # what the slice label=7 sees
    base = rng.dirichlet(np.ones(classes), n).astype(np.float32)
    cand = rng.dirichlet(np.ones(classes), n).astype(np.float32)
    combiner = _FusedCombiner("key", "baseline", "candidate")
    element = Inputs(
        {"baseline": labels, "candidate": labels},
        {"baseline": {"probabilities": base}, "candidate": {"probabilities": cand}},
        None,
    )
    counts = combiner.add_input(combiner.create_accumulator(), element)
    merged = combiner.merge_accumulators([counts, combiner.add_input(combiner.create_accumulator(), element)])
    assert len(pickle.dumps(merged)) < 20_000  # what Beam moves between stages
    plot = _value(merged, CONFUSION_PLOT, 1)
    entries = plot.matrices[0].entries
    assert {entry.actual_class_id for entry in entries} == {7}
    expected = np.bincount(cand.argmax(axis=1), minlength=classes) * 2
    assert {e.predicted_class_id: e.num_weighted_examples for e in entries} == {
        c: float(k) for c, k in enumerate(expected) if k
    }


def _many_classes_npz(path: Path, classes: int, per_class: int = 4) -> Path:
    """Random 8x8 images, `per_class` per class for training and half as many for evaluation."""
    rng = np.random.default_rng(SEED)
    labels = np.repeat(np.arange(classes), per_class)
    images = rng.integers(0, 256, (len(labels), 8, 8), dtype=np.uint8)
    np.savez(path, x_train=images, y_train=labels, x_test=images[::2], y_test=labels[::2])
    return path


@pytest.mark.slow
def test_200_classes_run_end_to_end_with_a_summary_of_k_squared_size(tmp_path):
    """Analysis, gate and report complete; the summary holds one K x K matrix per model, not one per slice
    (210 MB at 200 classes, which the gate refused to read)."""
    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import recorded_spec

    classes = 200
    run_dir = tmp_path / "run"
    done = run_command(
        "pipeline", "--run-dir", str(run_dir), "--data", str(_many_classes_npz(tmp_path / "d.npz", classes)),
        "--epochs", "1,2", "--histogram-freq", "0", "--seed", str(SEED), "-q",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert error_lines(done.stderr) == []
    summary_path = run_dir / "analysis" / "summary.json"
    # Two K x K matrices of indented JSON (about 13 bytes a number) and a few hundred bytes per slice.
    assert summary_path.stat().st_size < 2 * 13 * classes**2 + 2_000 * classes
    summary = json.loads(summary_path.read_text())
    spec = recorded_spec(summary["eval_data"], "summary")
    _, labels, records, _ = read_examples(str(run_dir / "data" / "eval-*.tfrecord"), spec)
    for role in ("baseline", "candidate"):
        assert list(summary["confusion_matrices"][role]) == ["overall"]
        predicted = predict_probabilities(run_dir / "models" / summary[role]["label"], records).argmax(axis=1)
        expected = np.zeros((classes, classes), dtype=int)
        np.add.at(expected, (labels, predicted), 1)
        np.testing.assert_array_equal(np.array(summary["confusion_matrices"][role]["overall"]), expected)
    assert json.loads((run_dir / "gate" / "verdict.json").read_text())["state"] in ("passed", "failed")
    page = (run_dir / "report" / "index.html").read_text()
    assert "The 30 classes with the largest drop</strong> (of 200; worst first)" in page
    assert "The other 170 classes</summary>" in page
    assert "The chart shows overall and the 30 classes with the largest drop" in page


def _summary_of(classes: int) -> dict:
    """A summary of K classes of 10 examples, class c changing by (c % 7 - 3) examples (worst: -3)."""
    slices = ["overall"] + [f"label={c}" for c in range(classes)]
    models, deltas, paired = {"baseline": {}, "candidate": {}}, {}, {}
    for sid in slices:
        change = 0 if sid == "overall" else int(sid.split("=")[1]) % 7 - 3
        right, wrong = max(change, 0), max(-change, 0)
        paired[sid] = {"both_right": 5, "newly_right": right, "newly_wrong": wrong, "both_wrong": 5 - right - wrong}
        models["baseline"][sid] = {"examples": 10, "accuracy": (5 + wrong) / 10}
        models["candidate"][sid] = {"examples": 10, "accuracy": (5 + right) / 10}
        deltas[sid] = {"accuracy": (right - wrong) / 10, "accuracy_ci": [-0.3, 0.3]}
    return {
        "baseline": {"label": "epochs-3"},
        "candidate": {"label": "epochs-6"},
        "eval_data": {"class_names": [f"class {c}" for c in range(classes)], "examples": 10 * classes},
        "slices": slices,
        "models": models,
        "deltas": deltas,
        "paired": paired,
    }


def test_the_report_shows_the_worst_classes_and_says_so_at_1000_classes():
    import io

    from PIL import Image

    from reports.html_report import MAX_CHECKS_IN_FULL, _checks_html
    from reports.per_class_view import per_class_chart, per_class_html

    summary = _summary_of(1000)
    table = per_class_html(summary)
    shown, _, folded = table.partition("<details>")
    assert "The 30 classes with the largest drop</strong> (of 1000; worst first)" in shown
    assert shown.count("<tr>") == 1 + 1 + 30 and "class 0<" in shown  # header, overall, the worst
    assert "The other 970 classes</summary>" in folded and folded.count("<tr>") == 1 + 970
    png, caption = per_class_chart(summary, "epochs-3", "epochs-6", 0.03)
    assert "the 30 classes with the largest drop" in caption
    assert Image.open(io.BytesIO(png)).size[0] < 1600  # 31 bars, not 1,001
    # Ten classes: every class in class order, no caption (the report of the default run is unchanged).
    few = _summary_of(10)
    assert per_class_html(few).count("<tr>") == 12 and "<details>" not in per_class_html(few)
    assert per_class_chart(few, "epochs-3", "epochs-6", 0.03)[1] == ""

    def check(c, status):
        return {"rule": "per-class drop", "slice": f"label={c}", "title": f"class {c}", "baseline": 0.5,
                "candidate": 0.5, "delta": 0.0, "threshold": "drop <= 0.03", "status": status}  # fmt: skip

    checks = [check(c, "fail" if c == 3 else "inconclusive" if c % 2 else "pass") for c in range(1000)]
    page = _checks_html({"checks": checks})
    shown, _, folded = page.partition("<details>")
    assert shown.count("<tr>") == 1 + MAX_CHECKS_IN_FULL and "class 3<" in shown
    assert f"{1000 - MAX_CHECKS_IN_FULL} more checks, {500 - MAX_CHECKS_IN_FULL} inconclusive, 500 passed" in folded


# 2. The pull-request comment after an interrupted run ---------------------------------------------------------------


@pytest.mark.slow
def test_the_comment_after_an_interrupted_analysis_shows_no_numbers_of_the_earlier_one(run_copy, capsys):
    from evalsuite.formatting import fmt
    from evalsuite.tables import per_class_rows
    from reports.__main__ import main as reports_main

    old = json.loads((run_copy / "analysis" / "summary.json").read_text())
    # Really interrupted: the analysis starts over, drops its record (and the gate's), and is killed in TFMA.
    process = subprocess.Popen(
        [sys.executable, "-m", "analysis", "--run-dir", str(run_copy), "--force", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    manifest_path = run_copy / "manifest.json"
    deadline = time.monotonic() + 600
    while "analysis" in json.loads(manifest_path.read_text())["stages"]:
        assert process.poll() is None and time.monotonic() < deadline, "the analysis ended before it was killed"
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert (run_copy / "analysis" / "summary.json").exists()  # the earlier analysis' files stay behind

    assert reports_main(["comment", "--run-dir", str(run_copy)]) == 0
    comment = capsys.readouterr().out
    assert comment.startswith("<!-- evalsuite-gate-comment -->\n") and "UNJUDGED" in comment
    assert "analysis has not finished" in comment
    assert "|" not in comment and "PASSED" not in comment and "FAILED" not in comment
    for row in per_class_rows(old):
        for number in (row["baseline"], row["candidate"]):
            assert fmt(number) not in comment, row


# 3. The views answer only their own host name ---------------------------------------------------------------


def test_host_headers_that_name_the_bound_address():
    from reports.host_check import allowed_names, check_bind_host, host_allowed

    names = allowed_names("127.0.0.1")
    for header in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000", "[::1]:8000"):
        assert host_allowed(header, names, 8000), header
    for header in ("evil.example:8000", "127.0.0.1:8001", "127.0.0.1", "", None, "127.0.0.1:8000@evil.example",
                   "[::1]x:8000", "127.0.0.1.evil.example:8000"):  # fmt: skip
        assert not host_allowed(header, names, 8000), header
    assert host_allowed("myhost.lan:8000", allowed_names("myhost.lan"), 8000)
    for every in ("", " ", "0.0.0.0", "::", "[::]"):
        assert "every network interface" in check_bind_host(every), every
    assert check_bind_host("127.0.0.1") is None and check_bind_host("myhost.lan") is None


def _get(url: str, host: str | None, path: str) -> tuple[int, bytes]:
    """A real GET to the server at `url`, with the Host header set to `host` (as a rebinding page would send it)."""
    address = url.split("//", 1)[1].split("/", 1)[0]
    name, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(name, int(port), timeout=60)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.slow
def test_the_view_answers_only_requests_that_name_its_host(tiny_run):
    process = subprocess.Popen(
        [sys.executable, "-m", "reports", "view", "--run-dir", str(tiny_run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        urls = dict(process.stdout.readline().strip().partition(": ")[::2] for _ in range(3))
        for server, path, content in (("report", "/index.html", b"Model gate"), ("tensorboard", "/data/runs", b"tfma")):
            port = urls[server].split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
            for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
                status, body = _get(urls[server], host, path)
                assert status == 200 and content in body, (server, host, status)
            for host in (f"evil.example:{port}", f"127.0.0.1:{int(port) + 1}", None):
                status, body = _get(urls[server], host, path)
                assert status == 403 and content not in body, (server, host, status)
        status, _ = _get(urls["report"], "evil.example", "/side-by-side")
        assert status == 403
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::"])
def test_a_view_on_every_interface_is_refused_with_one_line(tmp_path, host):
    done = run_command("reports", "view", "--run-dir", str(tmp_path), "--host", host, timeout=120)
    assert done.returncode == 2
    assert error_lines(done.stderr) == [done.stderr.strip()] and "every network interface" in done.stderr
