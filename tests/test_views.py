"""The report and the analyst views, as a person sees them: headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ARTIFACTS = Path(os.environ.get("EVALSUITE_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("EVALSUITE_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Page:
    """A page that records console errors and every URL it requests."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


def test_report_is_self_contained_and_escaped(tiny_run):
    text = (tiny_run / "report" / "index.html").read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    # Per-class plot, newly wrong and newly right images, each model's confusion matrix, training curves.
    changed = json.loads((tiny_run / "analysis" / "changed.json").read_text())
    kinds = {example["change"] for example in changed["examples"]}
    assert text.count("data:image/png;base64,") == 4 + len(kinds)


@pytest.mark.browser
def test_report_renders_with_verdict_digits_and_runs(browser, tiny_run):
    view = Page(browser)
    view.page.goto((tiny_run / "report" / "index.html").as_uri())
    verdict = json.loads((tiny_run / "gate" / "verdict.json").read_text())
    banner = view.page.locator("#verdict").inner_text()
    assert ("PASSED" if verdict["passed"] else "FAILED") in banner
    table = view.page.locator("#per-class").inner_text()
    assert "epochs-1" in table and "epochs-2" in table
    for digit in range(10):
        assert f"digit {digit}" in table
    checks = view.page.locator("#checks").inner_text()
    assert "newly right / wrong" in checks and "overall improvement" in checks
    widths = view.page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
    assert len(widths) >= 4 and all(width > 300 for width in widths)
    provenance = view.page.locator("#provenance").inner_text()
    assert "tensorflow-model-analysis" in provenance and "0.52.0" in provenance and "DirectRunner" in provenance
    assert view.shot("report.png").stat().st_size > 10_000
    assert view.errors == []
    assert all(url.startswith(("file:", "data:")) for url in view.requests), view.requests


@pytest.fixture
def view_server(tiny_run):
    process = subprocess.Popen(
        [sys.executable, "-m", "reports", "view", "--run-dir", str(tiny_run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    urls = {}
    for _ in range(3):
        line = process.stdout.readline()
        key, _, url = line.strip().partition(": ")
        urls[key] = url
    yield process, urls
    if process.poll() is None:
        process.kill()
        process.wait()


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.browser
def test_tensorboard_and_report_side_by_side(browser, view_server):
    process, urls = view_server
    assert set(urls) == {"tensorboard", "report", "side by side"}, urls
    for url in urls.values():
        assert url.startswith("http://127.0.0.1:")

    runs = _get_json(urls["tensorboard"] + "data/runs")
    assert {"epochs-1/train", "epochs-1/validation", "epochs-2/train", "epochs-2/tfma", "epochs-1/tfma"} <= set(runs)
    tags = _get_json(urls["tensorboard"] + "data/plugin/scalars/tags")
    assert "tfma/accuracy/overall" in tags["epochs-2/tfma"] and "tfma/accuracy/label=9" in tags["epochs-1/tfma"]
    assert "epoch_accuracy" in tags["epochs-2/validation"]
    images = _get_json(urls["tensorboard"] + "data/plugin/images/tags")
    assert "tfma/confusion_matrix" in images["epochs-2/tfma"]
    assert "tfma/newly_right_examples" in images["epochs-2/tfma"]

    board = Page(browser)
    board.page.goto(urls["tensorboard"] + "#scalars")
    board.page.get_by_text("epochs-2/tfma").first.wait_for(timeout=60_000)
    board.page.get_by_text("epoch_accuracy").first.wait_for(timeout=60_000)
    board.shot("tensorboard.png")
    assert board.errors == [], board.errors

    both = Page(browser)
    both.page.goto(urls["side by side"])
    report_frame = both.page.frame_locator("iframe[title=report]")
    report_frame.locator("#verdict").wait_for(timeout=30_000)
    both.page.frame_locator("iframe[title=TensorBoard]").get_by_text("epochs-1/train").first.wait_for(timeout=60_000)
    both.shot("side-by-side.png")
    assert both.errors == [], both.errors

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert "stopped" in process.stdout.read()
