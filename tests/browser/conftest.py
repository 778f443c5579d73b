"""The browser suite: the running system (`make up`) seen through headless Chromium, as an
operator sees it: the admins, the API docs, the front page, the trace UI.

Chromium and its driver come from Debian (`make bootstrap`); Selenium drives them. Every
page load is logged (Chrome's performance log), so a test can check that a page asked
nothing of any host but this machine: the docs and admin pages must work offline.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from common.topology import INFRA

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Generous: the machine has two cores and the stack runs beside the browser.
WAIT_SECONDS = 30.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Schemes that do not leave the page (inline images, the browser's own pages).
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome", "chrome-extension", "devtools"})

EDGE_URL = INFRA.edge_url.rstrip("/")


def _options(user_data_dir: str) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # As root on a machine with no network beyond its registries: no sandbox, and none
    # of Chromium's own background connections (they would be refused, many at a time).
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return options


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the session; each test starts from its own pages."""
    if shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None:
        pytest.fail("Chromium or its driver is missing: run `make bootstrap`")
    profile = tempfile.mkdtemp(prefix="saga-browser-")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=_options(profile))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def fresh_browser(browser: WebDriver) -> WebDriver:
    """The session's browser with no cookies and an empty request log: logged out."""
    browser.delete_all_cookies()
    requested_urls(browser)  # drain what earlier tests left in the log
    return browser


def wait(driver: WebDriver, seconds: float = WAIT_SECONDS) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, seconds)


def requested_urls(driver: WebDriver) -> list[str]:
    """Every URL the browser asked for since the last call (pages, scripts, images,
    fetches), from Chrome's performance log; the log is drained by reading it."""
    urls = []
    # (get_log is Chromium's; the remote WebDriver type does not declare it.)
    for entry in driver.execute(Command.GET_LOG, {"type": "performance"})["value"]:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def foreign_requests(urls: list[str]) -> list[str]:
    """The URLs among `urls` that leave this machine (a CDN, a font service, ...)."""
    foreign = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES:
            continue
        if parts.hostname not in LOCAL_HOSTS:
            foreign.append(url)
    return foreign


def assert_stayed_local(driver: WebDriver) -> None:
    """Fail if any request since the last check went to another host than this one."""
    foreign = foreign_requests(requested_urls(driver))
    assert not foreign, f"the page asked other hosts: {foreign}"
