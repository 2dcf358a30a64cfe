"""The operator console end to end in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed through apt-get when missing; Selenium from the test extras).

The pipeline data is the demo's (stories with duplicates, removed boilerplate, a dead
letter for a page that is gone). Screenshots of every page go to
``build/test-artifacts/console/``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipeline.demo.server import DemoServer

from integration.system import ensure_debian_packages

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "console"
TOKEN = "console-test-token-0123456789"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("console") / "work"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "demo", "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def console(demo_workdir, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "console", "--config", str(demo_workdir / "pipeline.yaml"),
                             "--port", "0", "--token-file", str(token_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
    assert m, line + proc.stderr.read() if proc.poll() is not None else line
    yield m.group(1)
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def browser():
    tools = ensure_debian_packages({"chromium": "chromium", "chromedriver": "chromium-driver"})
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = tools["chromium"]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu", "--no-first-run"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(tools["chromedriver"]), options=opts)
    driver.set_page_load_timeout(120)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _shot(driver, name):
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _wait_id(driver, element_id: str):
    """The element with ``element_id`` once the page that has it loaded (a submitted form's
    response comes a moment after click() returns)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 90).until(ec.presence_of_element_located((By.ID, element_id)))


def _submit(driver, button) -> None:
    """Click a form's button and wait for the response page: until then the page in the browser
    is the old one, whose own #msg (the previous action's) would otherwise be read."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(driver, 90).until(ec.staleness_of(old))


def _msg(driver) -> str:
    """The page's message after a form was submitted."""
    return _wait_id(driver, "msg").text


def _rows(driver, table_id):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")


def test_pages_render_in_chromium(console, browser):
    from selenium.webdriver.common.by import By

    browser.get(console + "/")
    stages = [r.find_elements(By.TAG_NAME, "td")[0].text for r in _rows(browser, "stages")]
    assert stages == ["poll", "extract", "dedupe", "boilerplate", "enrich"]
    extract = next(r for r in _rows(browser, "stages") if r.text.startswith("extract"))
    assert extract.find_elements(By.TAG_NAME, "td")[6].text == "2"  # the demo's dead letters
    # Freshness of the demo's enriched articles, measured from their poll: a figure, not "-".
    fresh = browser.find_element(By.ID, "freshness").text
    assert re.search(r"enriched: [\d.]+ (s|min) from poll", fresh), fresh
    _shot(browser, "overview")

    browser.get(console + "/feeds")
    feeds = _rows(browser, "feeds")
    assert len(feeds) == 6 and all("ok" in r.text or "error" in r.text for r in feeds)
    assert "sign in to act" in feeds[0].text  # no action without signing in
    _shot(browser, "feeds")

    browser.get(console + "/stories")
    stories = browser.find_elements(By.CSS_SELECTOR, ".story")
    assert stories
    # 3 duplicates, or 2 when a copy beat its original to articles.unique (it is then superseded)
    wire = [s for s in stories if "Duplicates (3)" in s.text or "Duplicates (2)" in s.text]
    assert len(wire) == 1 and len(wire[0].find_elements(By.CSS_SELECTOR, ".dups li")) in (2, 3)
    assert any(s.find_elements(By.CSS_SELECTOR, ".removed li") and "none" not in
               s.find_element(By.CSS_SELECTOR, ".removed").text for s in stories)  # removed boilerplate shown
    _shot(browser, "stories")


def test_inspect_box_shows_each_stage(console, browser):
    from selenium.webdriver.common.by import By

    with DemoServer() as demo:
        page = demo.base_url + "/harborledger/local/2024/11/10/library-makerspace-opens-3d-printers-sewing"
        browser.get(console + "/inspect")
        box = browser.find_element(By.NAME, "url")
        box.send_keys(page)
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "#inspect-form button"))
        extract = _wait_id(browser, "inspect-extract").text
        assert "canonical URL" in extract and "title" in extract
        assert browser.find_element(By.ID, "inspect-enrich").text
        assert len(browser.find_element(By.ID, "inspect-text").text.split()) > 50
        _shot(browser, "inspect")


def test_redrive_from_the_browser_needs_the_token_and_moves_the_letter(console, browser, demo_workdir):
    from selenium.webdriver.common.by import By

    browser.get(console + "/dlq?stage=extract")
    letters = _rows(browser, "dead-letters")
    # extract dead-letters a page that is no article as PageRejected (a StageError keeping its metadata)
    assert len(letters) == 2 and all("PageRejected" in r.text and "extract: page" in r.text for r in letters)
    assert not browser.find_elements(By.CSS_SELECTOR, "form[id^=redrive]")  # read-only until signed in

    browser.get(console + "/login")
    browser.find_element(By.NAME, "token").send_keys(TOKEN)
    _submit(browser, browser.find_element(By.CSS_SELECTOR, "#login-form button"))
    assert "signed in" in _msg(browser)

    browser.get(console + "/dlq?stage=extract")
    first = _rows(browser, "dead-letters")[0]
    at = first.find_elements(By.TAG_NAME, "td")[0].text
    _submit(browser, first.find_element(By.CSS_SELECTOR, "form button"))
    assert "re-drove 1 dead letter(s) of extract onto feed.entries" in _msg(browser)
    assert len(_rows(browser, "dead-letters")) == 1
    _shot(browser, "dlq-after-redrive")
    browser.get(console + "/")
    extract = next(r for r in _rows(browser, "stages") if r.text.startswith("extract"))
    assert extract.find_elements(By.TAG_NAME, "td")[6].text == "1"  # waiting, the re-driven one not counted

    # feed.entries may have several partitions (one per extract worker): look at all of it
    tail = subprocess.run([sys.executable, "-m", "pipeline", "tail", "feed.entries", "--config",
                           str(demo_workdir / "pipeline.yaml"), "--from-beginning", "--with-headers"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    partition, offset = at.split("@")
    froms = [json.loads(line)["headers"].get("__pipeline.redrive.from") for line in tail.stdout.splitlines()]
    assert froms.count(f"feed.entries.dlq:{partition}:{offset}") == 1, froms

    # The same action without the session's CSRF token, or from another site, is refused.
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    for headers, body in (({"Cookie": cookie}, "stage=extract&csrf=wrong"),
                          ({"Cookie": cookie, "Origin": "http://evil.example"}, "stage=extract")):
        req = urllib.request.Request(console + "/actions/redrive", data=body.encode(), headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 403
    browser.get(console + "/dlq?stage=extract")
    assert len(_rows(browser, "dead-letters")) == 1


def _sign_in(console, browser):
    from selenium.webdriver.common.by import By

    browser.get(console + "/login")
    if "signed in" not in browser.find_element(By.TAG_NAME, "header").text:
        browser.find_element(By.NAME, "token").send_keys(TOKEN)
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "#login-form button"))
        assert _msg(browser) == "signed in"


def test_disable_and_enable_a_feed_from_the_browser(console, browser, demo_workdir):
    from selenium.webdriver.common.by import By

    _sign_in(console, browser)
    browser.get(console + "/feeds")
    row = _rows(browser, "feeds")[0]
    url = row.find_elements(By.TAG_NAME, "td")[1].text
    _submit(browser, row.find_element(By.CSS_SELECTOR, "form[id^=disable] button"))
    assert _msg(browser) == f"disabled {url}; enable it to poll it again"
    row = _rows(browser, "feeds")[0]
    assert row.find_elements(By.TAG_NAME, "td")[2].text == "disabled"
    _shot(browser, "feeds-disabled")
    status = subprocess.run([sys.executable, "-m", "pipeline", "feeds", "status", "--json", "--config",
                             str(demo_workdir / "pipeline.yaml")], capture_output=True, text=True, timeout=60, cwd=ROOT)
    by_url = {r["url"]: r for r in map(json.loads, status.stdout.splitlines())}
    assert by_url[url]["state"] == "disabled"  # the poller's own state says so, not just the page

    _submit(browser, row.find_element(By.CSS_SELECTOR, "form[id^=enable] button"))
    assert _msg(browser) == f"enabled {url}"
    assert _rows(browser, "feeds")[0].find_elements(By.TAG_NAME, "td")[2].text != "disabled"


def test_feed_refresh_from_the_browser(console, browser, demo_workdir):
    """The refresh button puts a request for that feed on poll.control, where a running
    poller reads it (test_refresh.py shows a poller acting on such a request)."""
    from selenium.webdriver.common.by import By

    _sign_in(console, browser)
    browser.get(console + "/feeds")
    row = _rows(browser, "feeds")[0]
    url = row.find_elements(By.TAG_NAME, "td")[1].text
    _submit(browser, row.find_element(By.CSS_SELECTOR, "form[id^=refresh] button"))
    assert "asked the poller to poll" in _msg(browser)
    _shot(browser, "feeds-after-refresh")
    tail = subprocess.run([sys.executable, "-m", "pipeline", "tail", "poll.control", "--config",
                           str(demo_workdir / "pipeline.yaml"), "--from-beginning"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert tail.returncode == 0, tail.stderr
    requests = [json.loads(line) for line in tail.stdout.splitlines()]
    assert any(r.get("action") == "refresh" and url in r.get("urls", []) for r in requests), (url, requests)


def test_a_worker_serves_the_console_on_its_metrics_port(demo_workdir, browser, tmp_path):
    """``observe.console: true``: a stage worker's metrics port serves the same pages, read-only
    without a token, next to /metrics."""
    from selenium.webdriver.common.by import By

    from integration.workers import start_worker, terminate, wait_for

    log = tmp_path / "dedupe.log"
    worker = start_worker("dedupe", demo_workdir / "pipeline.yaml", log,
                          env={"PIPELINE__OBSERVE__METRICS_PORTS__DEDUPE": "0", "PIPELINE__OBSERVE__CONSOLE": "true",
                               "PIPELINE_CONSOLE_TOKEN": ""})
    try:
        serving = re.compile(r"the console \(read-only\) on (http://127\.0\.0\.1:\d+)")

        def url():
            assert worker.poll() is None, log.read_text()[-3000:]
            m = serving.search(log.read_text())
            return m and m.group(1)

        base = wait_for(url, 120, what="the dedupe worker serving its metrics port")
        with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
            assert b"pipeline_live" in r.read()
        browser.get(base + "/")
        stages = [r.find_elements(By.TAG_NAME, "td")[0].text for r in _rows(browser, "stages")]
        assert stages == ["poll", "extract", "dedupe", "boilerplate", "enrich"]
        assert "read-only" in browser.find_element(By.TAG_NAME, "header").text
        browser.get(base + "/dlq?stage=extract")
        assert _rows(browser, "dead-letters") and not browser.find_elements(By.CSS_SELECTOR, "form[id^=redrive]")
        _shot(browser, "worker-metrics-port-dlq")
        req = urllib.request.Request(base + "/actions/redrive", data=b"stage=extract&csrf=x")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 403
    finally:
        terminate(worker)
