"""The report and the live page in a real browser: headless Chromium (Debian's) through Selenium.

A routed hybrid call exported to the running collector gives Jaeger a real trace; the report
written by ``aurum-migrate report`` and the page served by ``aurum-migrate serve`` must load with
no console error and no request leaving 127.0.0.1, draw every plot at its size, and show the
shadow span beside the call span. Screenshots land in ``docs/``.

Skips (saying why) without the telemetry servers, without selenium, or without chromium and
chromium-driver (``bash scripts/browser.sh`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from aurum_otel import FileStore, Phase, Rollout
from aurum_otel.report import JaegerClient
from aurum_otel.report.svg import HEIGHT, WIDTH
from tests.integration.conftest import _IMPORT_ENV, ROOT, AppProcess, Pipeline, wait_for

pytestmark = pytest.mark.integration
DOCS = ROOT / "docs"
PLOTS = ("calls", "errors", "latency", "ratio", "mismatch", "split")


def _binary(variable: str, *names: str) -> str | None:
    found = _IMPORT_ENV.get(variable)
    if found and Path(found).exists():
        return found
    return next((shutil.which(n) for n in names if shutil.which(n)), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium with its console and network logs on."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed "
                                    "(pip install -e '.[test]')")
    chromium = _binary("AURUM_CHROMIUM_BIN", "chromium", "chromium-browser")
    driver_bin = _binary("AURUM_CHROMEDRIVER_BIN", "chromedriver")
    if not chromium or not driver_bin:
        pytest.skip("chromium or chromium-driver missing: run `bash scripts/browser.sh` "
                    "(apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1600,2600", "--hide-scrollbars"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=driver_bin)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def load(driver: Any, url: str) -> None:
    """Open ``url``; fail on any console error or any request that leaves 127.0.0.1."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(url)
    time.sleep(0.5)  # let late console messages arrive
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == [], f"console errors on {url}: {errors}"
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    assert requested, "the performance log saw no request at all: the check would prove nothing"
    leaving = [u for u in requested if not (u.startswith(("file://", "data:"))
                                            or urlsplit(u).hostname == "127.0.0.1")]
    assert leaving == [], f"requests leaving the machine from {url}: {leaving}"


def check_plots(driver: Any, migration: str) -> None:
    from selenium.webdriver.common.by import By

    for plot in PLOTS:
        svg = driver.find_element(By.ID, f"{migration}-{plot}")
        assert (svg.size["width"], svg.size["height"]) == (WIDTH, HEIGHT), plot
        drawn = svg.find_elements(By.CSS_SELECTOR, "path.series, circle")
        assert drawn, f"plot {plot} drew no line"
        assert svg.find_elements(By.CSS_SELECTOR, "g.legend text"), f"plot {plot} has no legend"
    assert driver.find_elements(By.CSS_SELECTOR, f"#{migration}-calls g.transition"), \
        "the transition into hybrid is not marked"


def check_trace(driver: Any, migration: str) -> None:
    from selenium.webdriver.common.by import By

    traces = driver.find_elements(By.CSS_SELECTOR, "div.trace")
    assert traces, "no trace drawn"
    trace = next(t for t in traces if t.find_elements(By.CSS_SELECTOR, "svg.trace-side.shadow g.span"))
    call = trace.find_element(By.CSS_SELECTOR, "svg.trace-side.call")
    shadow = trace.find_element(By.CSS_SELECTOR, "svg.trace-side.shadow")
    names = [g.get_attribute("data-name") for g in shadow.find_elements(By.CSS_SELECTOR, "g.span")]
    assert f"shadow {migration}" in names
    assert f"migrate {migration}" in [g.get_attribute("data-name")
                                      for g in call.find_elements(By.CSS_SELECTOR, "g.span")]
    # beside: same row, the shadow to the right of the call, neither overlapping the other
    assert abs(call.location["y"] - shadow.location["y"]) < 2
    assert shadow.location["x"] >= call.location["x"] + call.size["width"]
    assert shadow.is_displayed() and call.is_displayed()


def cli_env(state: Path, pipeline: Pipeline) -> dict[str, str]:
    env = {k: v for k, v in _IMPORT_ENV.items() if not k.startswith(("AURUM_", "OTEL_"))}
    env.update({"AURUM_STATE_DIR": str(state), "AURUM_PROMETHEUS_URL": pipeline.prometheus.url,
                "AURUM_JAEGER_URL": pipeline.jaeger.url,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))})
    return env


@pytest.fixture
def hybrid_run(pipeline: Pipeline, start_app: Callable[..., AppProcess], tmp_path: Path,
               unique: str) -> tuple[str, str, Path]:
    """A migration in hybrid 50 %/compare 100 % with mismatches, whose traces Jaeger holds."""
    migration, service = f"report_{unique}", f"report-{unique}"
    state = tmp_path / "state"
    state.mkdir()
    FileStore.in_dir(state).transition(migration, Phase.HYBRID, Rollout(percent=50, compare=100),
                                       actor="browser-test", reason="shadow every call")
    app = start_app(service=service, migration=migration, state_dir=state)
    app.send("config", mismatch_rate=0.2, latency_ms={"legacy": 2, "simplified": 1})
    app.send("calls", n=120)
    app.send("flush")
    app.send("serve", rate=40)  # keeps counting, so Prometheus's rates are not zero
    jaeger = JaegerClient(pipeline.jaeger.url)
    wait_for(lambda: jaeger.search(service, f"shadow {migration}", lookback="1h",
                                   tags={"aurum.migration.comparison": "mismatch"}) or None,
             timeout=60, what=f"Jaeger to hold a mismatched shadow span of {service}")
    return migration, service, state


def test_report_in_a_browser(browser: Any, hybrid_run: tuple[str, str, Path], pipeline: Pipeline,
                             tmp_path: Path) -> None:
    migration, service, state = hybrid_run
    output = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "aurum_otel.cli", "report", migration, "-o", str(output),
         "--service", service, "--jaeger-ui", pipeline.jaeger.url],
        env=cli_env(state, pipeline), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"report: {output}" in result.stdout
    load(browser, output.as_uri())
    check_plots(browser, migration)
    check_trace(browser, migration)
    DOCS.mkdir(exist_ok=True)
    browser.save_screenshot(str(DOCS / "report.png"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _note(browser: Any) -> str | None:
    """The live page's note, read in one step in the page (no element to go stale between a
    find and a read while the page refreshes itself); ``None`` mid-refresh."""
    text = browser.execute_script(
        "const note = document.querySelector('p.note'); return note ? note.textContent : null;")
    return None if text is None else " ".join(str(text).split())


def _across_refreshes(check: Callable[[], None], attempts: int = 3) -> None:
    """Run ``check`` on the live page; if the page replaced an element it held (a refresh
    landed mid-check), run it again on the new page."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(attempts):
        try:
            check()
            return
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise


def test_live_page_in_a_browser(browser: Any, hybrid_run: tuple[str, str, Path],
                                pipeline: Pipeline, tmp_path: Path) -> None:

    migration, service, state = hybrid_run
    for metric in ("aurum_migration_calls_total", "traces_span_metrics_duration_seconds_count"):
        rising = f'sum(rate({metric}{{aurum_migration_name="{migration}"}}[30s])) > 0'
        wait_for(lambda q=rising: pipeline.prometheus.values(q) or None,  # type: ignore[misc]
                 timeout=60, what=f"Prometheus to see {metric} rising")
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "aurum_otel.cli", "serve", migration, "--port", str(port),
         "--refresh", "2", "--source", "prometheus", "--since", "5m", "--service", service],
        env=cli_env(state, pipeline), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: requests.get(f"{url}healthz", timeout=2).ok or None, timeout=60,
                 what="aurum-migrate serve to answer")
        assert requests.post(url, timeout=5).status_code == 405  # read-only
        load(browser, url)
        # the page replaces itself every 2 s: a check that straddles a refresh reads again
        _across_refreshes(lambda: check_plots(browser, migration))
        _across_refreshes(lambda: check_trace(browser, migration))
        first = _note(browser)
        wait_for(lambda: (_note(browser) or first) != first or None,
                 timeout=20, what="the live page to refresh itself")
        assert "Refreshes every 2 s" in (_note(browser) or "")
        DOCS.mkdir(exist_ok=True)
        browser.save_screenshot(str(DOCS / "serve.png"))
    finally:
        server.terminate()
        server.wait(10)
        log.close()
