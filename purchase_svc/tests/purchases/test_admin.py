"""The purchases admin, in-process: lists, filters and searches load; steps show inline."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from common.contract.events import PurchaseResult, PurchaseStatus, Step, StepStatus
from purchase_svc.purchases import services
from purchase_svc.tests.conftest import purchase_row

pytestmark = pytest.mark.django_db

ADMIN = "/admin/purchase/purchases"


@pytest.mark.parametrize(
    "path",
    [
        "purchase/",
        "purchase/?status__exact=NEEDS_ATTENTION",
        "purchase/?currency_code__exact=VND",
        "purchase/?q=whey",
        "purchase/?q=4242",
        f"purchase/?q={uuid.uuid4()}",
        "purchasestepevent/",
        "purchasestepevent/?status__exact=ROLLBACK_FAILED",
        "purchasestepevent/?q=whey",
        f"purchasestepevent/?q={uuid.uuid4()}",
    ],
)
def test_lists_filters_and_searches_answer(admin_client: Client, path: str) -> None:
    purchase_row(4242)

    assert admin_client.get(f"{ADMIN}/{path}").status_code == 200


def test_search_finds_a_purchase_by_id_or_customer(admin_client: Client) -> None:
    mine, other = purchase_row(4242), purchase_row(5353)

    by_id = admin_client.get(f"{ADMIN}/purchase/?q={mine.id}").content.decode()
    by_customer = admin_client.get(f"{ADMIN}/purchase/?q=5353").content.decode()

    assert str(mine.id) in by_id and str(other.id) not in by_id
    assert str(other.id) in by_customer and str(mine.id) not in by_customer


def test_a_purchase_shows_its_steps_read_only(admin_client: Client) -> None:
    purchase = purchase_row(4242)
    services.purchase_step_record(
        message_id="m-1",
        result=PurchaseResult(
            str(purchase.id),
            Step.CREATE_ORDER,
            StepStatus.ROLLBACK_FAILED,
            PurchaseStatus.NEEDS_ATTENTION,
            sequence=9,
            error="order service down",
        ),
    )

    page = admin_client.get(f"{ADMIN}/purchase/{purchase.id}/change/")

    assert page.status_code == 200
    content = page.content.decode()
    assert "ROLLBACK_FAILED" in content and "order service down" in content
    assert 'name="_save"' not in content  # nothing to edit
    assert admin_client.get(f"{ADMIN}/purchase/add/").status_code == 403
