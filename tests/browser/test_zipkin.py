"""Zipkin's UI shows a purchase's trace across the five services it crosses, offline.

`make up OBSERVABILITY=1` (which `make test` does) runs Zipkin; a fresh purchase is
bought in a trace of our own, and its trace page is opened as an operator opens it.
"""

from __future__ import annotations

import re

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from common.topology import INFRA
from deploy.local import paths
from tests.browser.conftest import assert_stayed_local, wait
from tests.e2e.traces import (
    FIVE_SERVICES,
    completed_traced_purchase,
    roots,
    services_of,
    wait_for_trace,
)

SCREENSHOTS = paths.VAR / "screenshots"
# Zipkin's span tree draws only the rows in view: a window tall enough for every row
# (about 30 px each, under the trace's header) shows the whole trace at once.
ROW_PX = 40
HEADER_PX = 600
WIDTH_PX = 1400


def services_listed(driver: WebDriver) -> set[str]:
    """The services named by the span rows on the page ("<service>: <span name>")."""
    text = driver.find_element(By.TAG_NAME, "body").text
    return set(re.findall(r"^([a-z]+): ", text, re.MULTILINE))


def test_the_trace_page_of_a_purchase_lists_its_five_services(
    fresh_browser: WebDriver,
) -> None:
    trace_id, _ = completed_traced_purchase()
    spans = wait_for_trace(
        trace_id, lambda found: services_of(found) >= FIVE_SERVICES and len(roots(found)) == 1
    )
    assert services_of(spans) >= FIVE_SERVICES, services_of(spans)
    screenshot = SCREENSHOTS / "zipkin-trace.png"  # the latest run's
    screenshot.unlink(missing_ok=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = fresh_browser.get_window_size()
    fresh_browser.set_window_size(WIDTH_PX, HEADER_PX + ROW_PX * len(spans))
    try:
        fresh_browser.get(f"{INFRA.zipkin_url}/zipkin/traces/{trace_id}")

        wait(fresh_browser).until(
            lambda driver: services_listed(driver) >= FIVE_SERVICES,
            message=f"the trace page does not list the five services {sorted(FIVE_SERVICES)}",
        )
        assert trace_id in fresh_browser.find_element(By.TAG_NAME, "body").text
        assert fresh_browser.save_screenshot(str(screenshot))
    finally:
        fresh_browser.set_window_size(original["width"], original["height"])

    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert_stayed_local(fresh_browser)
