"""The report card, the acknowledgement link and the Data Docs in a real browser (Debian's headless Chromium,
driven by Selenium): every page in all three languages loads with no request leaving it,
right to left where it belongs, every chart with its table; the link's button acknowledges
exactly its alert, once. Skipped, saying why, where Chromium or its driver is not installed
(``.ci/run`` installs them)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from ci_pipeline import alert, store
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive.api import create_app
from ci_pipeline.report.build import build_report
from ci_pipeline.store import Alert, AlertStatus
from tests.detect.test_detect import LFP, frame, series
from tests.detect.test_gate import faulty, project  # noqa: F401 (fixtures: a real gate run)

pytestmark = pytest.mark.slow

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402  (only where a browser exists)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def requested(driver: webdriver.Chrome) -> list[str]:
    """The URLs the browser requested since the last call (its performance log)."""
    out = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            out.append(message["params"]["request"]["url"])
    return out


def _stored_alert(engine: Engine, initiative: Initiative, geo: str, period: str) -> int:
    with store.transaction(engine=engine) as session:
        return store.add_alert(
            Alert(
                initiative_id=initiative.info.id,
                kind="step",
                measure_id=LFP,
                geo_code=geo,
                disaggregation="age_band=total",
                period=period,
                message=f"Arab women's labour-force participation in {geo} fell in {period}",
                evidence="{}",
            ),
            session=session,
        )


@pytest.fixture
def stored(initiative: Initiative, sqlite_engine: Engine) -> tuple[int, int]:
    """Two localities' and the cluster's quarters, one suppressed, and two open alerts."""
    rows = frame(
        series(initiative, LFP, [0.30, 0.31, 0.4321987, 0.219], suppressed={-1: True}),
        series(initiative, LFP, [0.28, 0.29, 0.30, 0.31], geo="karmiel"),
        series(initiative, LFP, [0.28, 0.29, 0.30, 0.27], geo="beit-hakerem"),
    )
    slices = sorted(set(rows.select("measure_id", "period").iter_rows()))
    store.replace_indicators(initiative.info.id, slices, rows, engine=sqlite_engine)
    return (
        _stored_alert(sqlite_engine, initiative, "nahf", "2025-Q4"),
        _stored_alert(sqlite_engine, initiative, "karmiel", "2025-Q3"),
    )


def test_the_report_card_in_three_languages(
    browser: webdriver.Chrome,
    initiative: Initiative,
    sqlite_engine: Engine,
    stored: tuple[int, int],
    tmp_path: Path,
) -> None:
    built = build_report(
        initiative, tmp_path / "report-card", engine=sqlite_engine, today=date(2026, 11, 30)
    )
    requested(browser)  # clear the log
    pages = [built.index, *sorted(built.root.glob("*/*.html"))]
    assert len(pages) == 1 + 3 * 4  # the index; cluster, Nahf, Karmiel, summary per language
    for page in pages:
        browser.get(page.as_uri())
        lang = browser.find_element(By.TAG_NAME, "html").get_attribute("lang")
        direction = browser.execute_script("return document.documentElement.dir")
        assert direction == ("rtl" if lang in ("he", "ar") else "ltr"), page
        figures = browser.find_elements(By.CSS_SELECTOR, "figure svg")
        tables = browser.find_elements(By.CSS_SELECTOR, "table")
        if page.name != "summary.html":
            assert figures and len(figures) == len(tables), page
            # The chart is drawn: it has a size on the page.
            assert all(f.size["width"] > 100 for f in figures), page
        # The open alerts are on the cluster's card, with their numbers.
        if page.name == "index.html":
            text = browser.find_element(By.TAG_NAME, "body").text
            assert all(f"#{i}" in text for i in stored), page
        assert "43.2" not in browser.page_source  # the suppressed value, nowhere
        elsewhere = [u for u in requested(browser) if not u.startswith(("file:", "data:"))]
        assert elsewhere == [], page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api(settings: Settings, initiative: Initiative, sqlite_engine: Engine) -> Iterator[Settings]:
    """The intake API on a free port, in a thread; the settings its links start with."""
    port = _free_port()
    served = settings.model_copy(update={"api_port": port})
    app = create_app(served, initiative, engine=sqlite_engine, emitter=lambda _e: None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield served
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("lang", ["en", "he", "ar"])
def test_the_acknowledgement_link_acknowledges_its_alert_once(
    browser: webdriver.Chrome,
    api: Settings,
    sqlite_engine: Engine,
    stored: tuple[int, int],
    lang: str,
) -> None:
    mine, other = stored
    link = alert.link_maker(api)(mine) + f"?lang={lang}"

    def status(i: int) -> str:
        [a] = store.alerts_by_id([i], engine=sqlite_engine)
        return str(a.status)

    requested(browser)
    browser.get(link)
    assert browser.execute_script("return document.documentElement.dir") == (
        "ltr" if lang == "en" else "rtl"
    )
    assert status(mine) == AlertStatus.open  # opening the link changes nothing
    browser.find_element(By.ID, "ack").click()
    # The button posts and the browser loads the answer: wait for it, not for a fixed time.
    outcome = WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.ID, "outcome"))
    )
    assert outcome.text
    assert (status(mine), status(other)) == (AlertStatus.acknowledged, AlertStatus.open)
    browser.get(link)  # again: it says so, and offers no button
    assert browser.find_elements(By.ID, "ack") == []
    assert status(other) == AlertStatus.open
    base = api.api_base_url
    elsewhere = [u for u in requested(browser) if not u.startswith((base, "data:"))]
    assert elsewhere == []


def test_the_quality_gates_data_docs_load_styled_with_nothing_from_elsewhere(
    browser: webdriver.Chrome,
    faulty: object,  # noqa: F811
    project: Path,  # noqa: F811
) -> None:
    # The Data Docs of a real gate run (tests/detect/test_gate.py's): GX's templates name CDNs
    # for their scripts and styles; the pages load the local copies instead.
    pages = sorted(project.rglob("data_docs/local_site/**/*.html"))
    assert len(pages) >= 2
    requested(browser)  # clear the log
    for page in pages:
        browser.get(page.as_uri())
        assert browser.execute_script("return typeof window.jQuery") == "function", page
        # Bootstrap's stylesheet is applied: its .container has a maximum width.
        width = browser.execute_script(
            "const d = document.createElement('div'); d.className = 'container';"
            "document.body.appendChild(d); return getComputedStyle(d).maxWidth"
        )
        assert width not in ("none", ""), page
        elsewhere = [u for u in requested(browser) if not u.startswith(("file:", "data:"))]
        assert elsewhere == [], page
