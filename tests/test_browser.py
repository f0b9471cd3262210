"""The studio in a real browser: Playwright driving Debian's Chromium against the app on tiny models.

A user types a prompt, starts a run, sees a live image while the status still counts steps, then the
final one; starts a second run and stops it. Screenshots of both moments are saved (into the folder
named by $STUDIO_SCREENSHOTS, else the test's temporary folder) for a human to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def studio_url(studio_server):
    return studio_server


@pytest.fixture
def page(studio_url):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(studio_url[0])
        yield page
        browser.close()


def set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def shot(page, outputs: Path, name: str) -> Path:
    path = outputs / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("STUDIO_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["STUDIO_SCREENSHOTS"]) / name)
    return path


LIVE = """([total]) => {
    const status = document.querySelector('#status textarea').value;
    const img = document.querySelector('#result img');
    const m = status.match(/^step (\\d+)\\/(\\d+)/);
    return m && Number(m[1]) < total && Number(m[2]) === total && img && img.src.includes('gradio_api/file=')
        && img.complete && img.naturalWidth > 0;
}"""


def test_run_shows_live_image_then_final_and_stop_keeps_it(page, studio_url):
    from playwright.sync_api import expect

    _, outputs = studio_url
    status = page.locator("#status textarea")
    page.locator("#prompt textarea").fill("snowy mountains at night")
    page.locator("#canvas").get_by_label("Fourier pixels").check()
    set_slider(page, "steps", 120)
    set_slider(page, "size", 64)
    page.locator("#lock input[type=checkbox]").check()
    page.locator("#seed input").fill("1234")

    page.locator("#run").click()
    page.wait_for_function(LIVE, arg=[120], polling="raf")  # an image while the status still counts
    shot(page, outputs, "studio-running.png")
    expect(status).to_have_value(re.compile(r"^done · 120 steps"), timeout=120_000)
    final_src = page.locator("#result img").get_attribute("src")
    assert "snowy-mountains-at-night.png" in final_src  # the saved file, not a preview
    assert page.locator("#seed input").input_value() == "1234"  # locked seed kept
    from imagination.io import read_metadata
    from imagination.pipeline import CANVAS_DEFAULTS

    meta = read_metadata(outputs / final_src.split("/")[-1])
    fourier = CANVAS_DEFAULTS["pixels"]
    assert [meta[k] for k in ("pad", "jitter", "rotate")] == [fourier[k] for k in ("pad", "jitter", "rotate")]
    expect(page.locator("#film a").first).to_be_attached(timeout=10_000)  # the film of the run, to download
    shot(page, outputs, "studio-done.png")

    set_slider(page, "steps", 1000)
    page.locator("#run").click()
    expect(status).to_have_value(re.compile(r"^step ([2-9]\d|\d{3})/1000"), timeout=60_000)
    page.locator("#stop").click()
    expect(status).to_have_value(re.compile(r"stopped at step \d+/1000"), timeout=30_000)
    assert not status.input_value().startswith("done")
    assert "stopped" in page.locator("#result img").get_attribute("src")  # the stopped image, saved
    assert list(outputs.glob("*-stopped.png"))
    shot(page, outputs, "studio-stopped.png")


ONE_LINE = """(selector) => [...document.querySelectorAll(selector)].map(td => {
    const range = document.createRange();
    range.selectNodeContents(td);
    return [td.innerText.trim(), new Set([...range.getClientRects()].map(r => Math.round(r.top))).size];
})"""


@pytest.mark.parametrize("width", [1400, 900])
def test_models_tab_keeps_each_status_on_one_line(page, width):
    """The status column was squeezed until its words broke ('read y', 'miss ing'), then the names did."""
    page.get_by_role("tab", name="Models").click()  # at the fixture's width (narrower hides it in a menu)
    page.wait_for_selector("#models_table tbody td")
    page.set_viewport_size({"width": width, "height": 900})
    cells = page.evaluate(ONE_LINE, "#models_table tbody td:nth-child(2)")
    assert cells and {text.split()[-1] for text, _ in cells} <= {"ready", "missing"}
    assert all(lines == 1 for _, lines in cells), cells
    names = page.evaluate(ONE_LINE, "#models_table tbody td:nth-child(1) strong")  # 'clip-vit-base-patch3 2' once
    assert len(names) == len(cells) and all(lines == 1 for _, lines in names), names
