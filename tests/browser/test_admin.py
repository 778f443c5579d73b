"""The six Django admins in a real browser, with one identity (docs/adr/0019).

Accounts are the account service's, made as an operator makes them: registered through
the API, then `make superuser` / `make staff`. A superuser logs into each admin, reads an
order, the payment of a purchase and a saga's step log, and runs the saga "resume"
action; a staff member reads the same but changes nothing and runs no action; a customer
is refused by all six; revoking staff ends access on the next page. No page asks any
host but this machine.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from common.settings import REPO_ROOT
from common.testing import (
    create_category,
    create_product,
    login,
    manage,
    new_email,
    register_customer,
    without_django_settings,
)
from tests.browser.conftest import EDGE_URL, assert_stayed_local, wait
from tests.e2e.conftest import purchase, wait_final

PASSWORD = "browser-Admin-Secret-42"
SERVICES = ("account", "product", "order", "payment", "purchase", "orchestrator")
BAD_LOGIN = "Please enter the correct email and password for a staff account."


@dataclass(frozen=True)
class Account:
    email: str
    customer_id: int
    password: str = PASSWORD


def make(target: str, email: str) -> None:
    """`make staff|superuser EMAIL=...`, as an operator grants a role."""
    result = subprocess.run(
        ["make", "--no-print-directory", target, f"EMAIL={email}"],
        cwd=REPO_ROOT,
        env=without_django_settings(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def account(kind: str, role: str | None) -> Account:
    email = new_email("browser", kind)
    registered = register_customer(email, password=PASSWORD, retry=True)
    if role is not None:
        make(role, email)
    return Account(email, registered.id)


@pytest.fixture(scope="module")
def superuser() -> Account:
    return account("superuser", "superuser")


@pytest.fixture(scope="module")
def staff() -> Account:
    return account("staff", "staff")


@pytest.fixture(scope="module")
def purchase_id(superuser: Account) -> str:
    """A completed purchase: a product made by the superuser, bought by a customer."""
    token = login(superuser.email, password=PASSWORD, retry=True).token
    category = create_category(token, retry=True)
    product = create_product(token, category_id=int(category["id"]), retry=True, inventory=5)
    buyer = register_customer(new_email("browser", "buyer"), password=PASSWORD, retry=True)
    bought = purchase(buyer, [(int(product["id"]), 2)])
    assert wait_final(buyer, bought)["status"] == "COMPLETED"
    return bought


def admin_url(service: str, path: str = "") -> str:
    return f"{EDGE_URL}/admin/{service}/{path}"


def log_in(driver: WebDriver, service: str, who: Account) -> None:
    """Fill in the admin's login form as a person does, and send it."""
    driver.get(admin_url(service, f"login/?next=/admin/{service}/"))
    driver.find_element(By.ID, "id_username").send_keys(who.email)
    driver.find_element(By.ID, "id_password").send_keys(who.password)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # Let in (away from the login page) or refused (an error on it).
    wait(driver).until(
        lambda d: "/login/" not in d.current_url or d.find_elements(By.CSS_SELECTOR, ".errornote")
    )


def assert_logged_in(driver: WebDriver, service: str) -> None:
    assert driver.current_url == admin_url(service), driver.current_url
    assert "Site administration" in driver.find_element(By.TAG_NAME, "h1").text


def body_text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


@pytest.fixture
def browser_logged_out(fresh_browser: WebDriver) -> Iterator[WebDriver]:
    yield fresh_browser
    assert_stayed_local(fresh_browser)


def test_a_superuser_logs_into_all_six_admins_with_one_account(
    browser_logged_out: WebDriver, superuser: Account
) -> None:
    for service in SERVICES:
        log_in(browser_logged_out, service, superuser)
        assert_logged_in(browser_logged_out, service)


def test_a_superuser_reads_the_order_the_payment_and_the_step_log_and_resumes_a_saga(
    browser_logged_out: WebDriver, superuser: Account, purchase_id: str
) -> None:
    driver = browser_logged_out
    for service in ("order", "payment", "orchestrator"):
        log_in(driver, service, superuser)

    driver.get(admin_url("order", "orders/order/"))
    assert purchase_id in body_text(driver)

    driver.get(admin_url("payment", f"payments/payment/{purchase_id}/change/"))
    payment = body_text(driver)
    assert purchase_id in payment and "COMPLETED" in payment

    driver.get(admin_url("orchestrator", f"sagas/saga/{purchase_id}/change/"))
    step_log = driver.find_element(By.ID, "step_logs-group").text
    for step in ("UPDATE_PRODUCT_INVENTORY", "CREATE_ORDER", "CREATE_PAYMENT"):
        assert step in step_log

    driver.get(admin_url("orchestrator", f"sagas/saga/?q={purchase_id}"))
    driver.find_element(By.CSS_SELECTOR, f"input.action-select[value='{purchase_id}']").click()
    Select(driver.find_element(By.NAME, "action")).select_by_value("resume")
    driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    message = wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".messagelist")))
    # A completed saga has nothing to resume: the action ran and says so.
    expected = f"{purchase_id}: the saga is completed; there is nothing to resume."
    assert expected in message.text.lower()


def test_staff_may_view_every_admin_but_change_nothing_and_run_no_action(
    browser_logged_out: WebDriver, staff: Account, purchase_id: str
) -> None:
    driver = browser_logged_out
    for service in SERVICES:
        log_in(driver, service, staff)
        assert_logged_in(driver, service)

    driver.get(admin_url("order", "orders/order/"))
    assert purchase_id in body_text(driver)
    driver.get(admin_url("payment", f"payments/payment/{purchase_id}/change/"))
    assert purchase_id in body_text(driver)

    driver.get(admin_url("orchestrator", f"sagas/saga/{purchase_id}/change/"))
    assert "CREATE_PAYMENT" in driver.find_element(By.ID, "step_logs-group").text
    assert not driver.find_elements(By.NAME, "_save")
    driver.get(admin_url("orchestrator", "sagas/saga/"))
    assert purchase_id in body_text(driver)
    assert not driver.find_elements(By.NAME, "action")

    driver.get(admin_url("account", "accounts/customer/"))
    assert staff.email in body_text(driver)
    driver.get(admin_url("account", f"accounts/customer/{staff.customer_id}/change/"))
    assert staff.email in body_text(driver)
    assert not driver.find_elements(By.NAME, "_save")


def test_a_customer_is_refused_by_all_six_admins(browser_logged_out: WebDriver) -> None:
    customer = account("customer", None)
    for service in SERVICES:
        log_in(browser_logged_out, service, customer)
        assert "/login/" in browser_logged_out.current_url
        assert BAD_LOGIN in browser_logged_out.find_element(By.CSS_SELECTOR, ".errornote").text


def test_revoking_staff_ends_access_on_the_next_page(browser_logged_out: WebDriver) -> None:
    revoked = account(f"revoked-{uuid.uuid4().hex[:6]}", "staff")
    for service in SERVICES:
        log_in(browser_logged_out, service, revoked)
        assert_logged_in(browser_logged_out, service)

    manage("account", "grant_staff", "--revoke", revoked.email)

    for service in SERVICES:
        browser_logged_out.get(admin_url(service))
        assert "/login/" in browser_logged_out.current_url, service
