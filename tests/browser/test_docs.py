"""Each service's API docs, Swagger UI and Redoc, render its operations in a real browser
from our own static files: nothing is asked of a CDN (docs/adr/0020)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from common.frontpage.links import ServiceLinks, all_services
from tests.browser.conftest import EDGE_URL, assert_stayed_local, wait

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
SERVICES = {s.name: s for s in all_services()}


def operation_ids(links: ServiceLinks) -> set[str]:
    """The operations the service's OpenAPI schema declares."""
    response = requests.get(f"{EDGE_URL}{links.schema}", params={"format": "json"}, timeout=30)
    response.raise_for_status()
    schema: dict[str, Any] = response.json()
    return {
        operation["operationId"]
        for item in schema["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


@pytest.mark.parametrize("service", SERVICES)
def test_swagger_ui_renders_every_operation_of_the_service(
    fresh_browser: WebDriver, service: str
) -> None:
    links = SERVICES[service]
    expected = operation_ids(links)
    assert expected, f"{service} declares no operation"

    fresh_browser.get(f"{EDGE_URL}{links.swagger}")
    # Swagger UI lists each operation once, as one block with its operationId in its id.
    wait(fresh_browser).until(
        lambda d: swagger_operations(d) == expected,
        f"Swagger UI of {service} did not render {sorted(expected)}",
    )

    assert_stayed_local(fresh_browser)


def swagger_operations(driver: WebDriver) -> set[str]:
    """The operationIds of the blocks Swagger UI rendered (`operations-<tag>-<operationId>`)."""
    try:
        blocks = driver.find_elements(By.CSS_SELECTOR, ".opblock")
        return {(b.get_attribute("id") or "").split("-", 2)[-1] for b in blocks}
    except StaleElementReferenceException:  # re-rendered meanwhile: look again
        return set()


def redoc_operations(driver: WebDriver) -> set[str]:
    """The operationIds of the sections Redoc rendered (`.../operation/<operationId>`)."""
    try:
        sections = driver.find_elements(By.CSS_SELECTOR, "[data-section-id*='operation/']")
        return {(s.get_attribute("data-section-id") or "").rpartition("/")[2] for s in sections}
    except StaleElementReferenceException:  # re-rendered meanwhile: look again
        return set()


@pytest.mark.parametrize("service", SERVICES)
def test_redoc_renders_every_operation_of_the_service(
    fresh_browser: WebDriver, service: str
) -> None:
    links = SERVICES[service]
    expected = operation_ids(links)

    fresh_browser.get(f"{EDGE_URL}{links.redoc}")
    wait(fresh_browser).until(
        lambda d: redoc_operations(d) == expected,
        f"Redoc of {service} did not render {sorted(expected)}",
    )

    assert fresh_browser.title == f"{service} service API"
    assert_stayed_local(fresh_browser)
