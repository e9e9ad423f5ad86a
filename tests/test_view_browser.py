"""The run's web page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium opens the page written by ``python -m sinsim view`` from
a file, and checks that it renders without console errors, that no request leaves the page, that
the map, timeline and curves are drawn, and that moving the slider moves the satellites.
Skips, saying why, where no browser or Selenium is installed (``make setup browser`` installs
them as root). It views the stored ``tests/data/results_small/leo_walker`` run, or the results
directory ``SINSIM_VIEW_RUN`` names; with ``SINSIM_VIEW_SCREENSHOT=path.png`` it saves a
screenshot of the page there (docs/figures/view.png is one, of results/leo_isl).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("plotly", reason="the view extra is not installed (pip install "
                                     "'sinsim[view]')")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install 'sinsim[view]')")

from sinsim.cli import main  # noqa: E402

STORED = Path(__file__).resolve().parent / "data" / "results_small" / "leo_walker"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no headless browser: install Debian's chromium and chromium-driver "
           "(apt-get install -y chromium chromium-driver; `make browser` does as root)")]


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,2600", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def _satellites_x(driver) -> list:
    return driver.execute_script(
        "const gd = document.getElementById('sinsim-map');"
        "return gd.data.find(t => t.name === 'satellites').x;")


def _drawn(driver, div: str, layer: str) -> int:
    return driver.execute_script(
        f"return document.querySelectorAll('#{div} .{layer} .trace').length;")


def test_the_page_renders_offline_and_the_slider_moves_the_satellites(browser, tmp_path, capsys):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = tmp_path / "view.html"
    run = os.environ.get("SINSIM_VIEW_RUN") or str(STORED)
    assert main(["view", run, "--out", str(page)]) == 0
    assert str(page) in capsys.readouterr().out
    browser.get(page.as_uri())
    for _ in range(100):  # plotly draws after load
        if _drawn(browser, "sinsim-curves", "scatterlayer"):
            break
        time.sleep(0.2)

    assert _drawn(browser, "sinsim-map", "scatterlayer") >= 5  # coastlines, tracks, nodes ...
    assert _drawn(browser, "sinsim-timeline", "barlayer") >= 1
    assert _drawn(browser, "sinsim-curves", "scatterlayer") >= 3
    coast = browser.execute_script(
        "return document.getElementById('sinsim-map').data[0].x.length;")
    assert coast > 5000  # the shipped coastlines

    before = _satellites_x(browser)
    rail = browser.find_element(By.CSS_SELECTOR, "#sinsim-map .slider-rail-touch-rect")
    ActionChains(browser).move_to_element_with_offset(
        rail, int(rail.size["width"] * 0.3), 0).click().perform()
    time.sleep(1.0)
    after = _satellites_x(browser)
    active = browser.execute_script(
        "return document.getElementById('sinsim-map').layout.sliders[0].active;")
    assert active > 0, "the click did not move the slider"
    assert len(after) == len(before)
    moved = sum(abs(a - b) > 0.5 for a, b in zip(after, before) if a is not None)
    assert moved >= len(before) // 2, (before[:5], after[:5])

    play = browser.find_elements(By.CSS_SELECTOR, "#sinsim-map .updatemenu-button")[0]
    ActionChains(browser).move_to_element(play).click().perform()
    time.sleep(1.5)
    playing = browser.execute_script(
        "return document.getElementById('sinsim-map').layout.sliders[0].active;")
    pause = browser.find_elements(By.CSS_SELECTOR, "#sinsim-map .updatemenu-button")[1]
    ActionChains(browser).move_to_element(pause).click().perform()
    assert playing > active, "play did not advance the slider"

    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);")
    outside = [r for r in resources if not r.startswith(("data:", "file:", "blob:"))]
    assert not outside, f"requests left the page: {outside}"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors

    shot = os.environ.get("SINSIM_VIEW_SCREENSHOT")
    if shot:
        browser.execute_script("window.scrollTo(0, 0);")
        browser.save_screenshot(shot)
