"""The edge's front page and admin index in a real browser: every admin, every service's
API docs and the running tools are linked, every link answers, and the pages ask nothing
of another host (docs/adr/0020)."""

from __future__ import annotations

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from common.frontpage.links import all_services, tool_links
from tests.browser.conftest import EDGE_URL, assert_stayed_local, wait


def page_links(driver: WebDriver) -> dict[str, str]:
    """Each link of the page: its text -> its address as the page wrote it."""
    return {
        a.text: a.get_attribute("href") or "" for a in driver.find_elements(By.CSS_SELECTOR, "a")
    }


def hrefs(driver: WebDriver) -> list[str]:
    """Every link of the page, resolved by the browser to absolute URLs."""
    return [a.get_attribute("href") or "" for a in driver.find_elements(By.CSS_SELECTOR, "a")]


@pytest.fixture
def front_page(fresh_browser: WebDriver) -> WebDriver:
    fresh_browser.get(f"{EDGE_URL}/")
    wait(fresh_browser).until(lambda d: d.find_elements(By.ID, "services"))
    return fresh_browser


def test_the_front_page_links_every_admin_and_every_services_docs(front_page: WebDriver) -> None:
    links = set(hrefs(front_page))

    for svc in all_services():
        for path in (svc.admin, svc.swagger, svc.redoc, svc.schema, svc.health):
            assert f"{EDGE_URL}{path}" in links, path
    assert_stayed_local(front_page)


def test_the_front_page_links_the_tools_that_run(front_page: WebDriver) -> None:
    shown = page_links(front_page)

    # The page's server and this test probe the same addresses on the same machine.
    for tool in tool_links():
        assert shown.get(tool.title) == tool.href
    assert shown["Traefik dashboard"].endswith("/dashboard/")


def test_every_link_of_the_front_page_answers(front_page: WebDriver) -> None:
    for url in hrefs(front_page):
        response = requests.get(url, timeout=30)
        # A health check may say 503 while someone restarts a service; nothing is missing.
        assert response.status_code != 404, url
        assert response.ok or url.endswith("/healthz"), (url, response.status_code)


def test_the_admin_index_lists_the_six_admins_and_each_asks_for_a_login(
    fresh_browser: WebDriver,
) -> None:
    fresh_browser.get(f"{EDGE_URL}/admin/")
    admins = wait(fresh_browser).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#admins a") or False
    )
    expected = {svc.name: f"{EDGE_URL}{svc.admin}" for svc in all_services()}
    assert {a.text: a.get_attribute("href") for a in admins} == expected

    admins[-1].click()
    service = list(expected)[-1]
    wait(fresh_browser).until(lambda d: f"/admin/{service}/login/" in d.current_url)
    assert fresh_browser.find_elements(By.NAME, "password")
    assert_stayed_local(fresh_browser)
