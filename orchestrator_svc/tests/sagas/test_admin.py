"""The saga admin: a person finds sagas by state and age, reads their step log, and
resumes or compensates them with the actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from django.test import Client
from django.urls import reverse

from common.admin_identity.testing import logged_in_client
from orchestrator_svc.sagas.models import SagaState
from orchestrator_svc.tests.fakes import FakeServices, run_to_rest, saga_row

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:sagas_saga_changelist"


def needs_attention(start_saga: Callable[..., str], fake: FakeServices) -> str:
    purchase_id = start_saga(customer_id=777)
    fake.fail("create_payment", grpc.StatusCode.FAILED_PRECONDITION)
    fake.fail_always("release_inventory", grpc.StatusCode.UNAVAILABLE)
    assert run_to_rest(purchase_id, fake).state == SagaState.NEEDS_ATTENTION
    return purchase_id


def test_the_list_filters_by_state_and_finds_a_saga_by_purchase_or_customer_id(
    admin_client: Client, start_saga: Callable[..., str], fake: FakeServices
) -> None:
    stuck = needs_attention(start_saga, fake)
    done = start_saga(customer_id=555)
    run_to_rest(done, FakeServices())

    by_state = admin_client.get(reverse(CHANGELIST), {"state__exact": "NEEDS_ATTENTION"})
    by_purchase = admin_client.get(reverse(CHANGELIST), {"q": done})
    by_customer = admin_client.get(reverse(CHANGELIST), {"q": "777"})
    nonsense = admin_client.get(reverse(CHANGELIST), {"q": "no such thing", "age": "1h"})
    in_flight = admin_client.get(reverse(CHANGELIST), {"in_flight": "yes"})

    assert by_state.status_code == 200
    assert stuck in by_state.text and done not in by_state.text
    assert done in by_purchase.text and stuck not in by_purchase.text
    assert stuck in by_customer.text and done not in by_customer.text
    assert nonsense.status_code == 200 and "0 sagas" in nonsense.text
    assert stuck not in in_flight.text and done not in in_flight.text


def test_one_saga_shows_its_step_log_read_only(
    admin_client: Client, start_saga: Callable[..., str], fake: FakeServices
) -> None:
    stuck = needs_attention(start_saga, fake)

    page = admin_client.get(reverse("admin:sagas_saga_change", args=[stuck]))

    assert page.status_code == 200
    for text in ("ROLLBACK_FAILED", "CREATE_PAYMENT", "FAILED_PRECONDITION", "gave up after"):
        assert text in page.text
    assert 'name="step_logs-0-status"' not in page.text  # not editable


def test_the_compensate_action_finishes_a_saga_once_its_fault_is_removed(
    admin_client: Client,
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    stuck = needs_attention(start_saga, fake)
    fake.heal("release_inventory")
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(CHANGELIST),
            {"action": "compensate", "_selected_action": [stuck]},
            follow=True,
        )

    assert response.status_code == 200
    assert "1 saga(s) compensation resumed." in response.text
    assert enqueued == [stuck]
    assert run_to_rest(stuck, fake).state == SagaState.FAILED


def test_an_action_that_does_not_apply_is_refused_with_a_message(
    admin_client: Client, start_saga: Callable[..., str], fake: FakeServices
) -> None:
    done = start_saga()
    run_to_rest(done, fake)

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "compensate", "_selected_action": [done]}, follow=True
    )

    assert "only a saga that needs attention can be compensated" in response.text
    assert saga_row(done).state == SagaState.COMPLETED


def test_the_resume_action_hands_a_saga_in_flight_to_a_worker(
    admin_client: Client,
    start_saga: Callable[..., str],
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase_id = start_saga()
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(CHANGELIST),
            {"action": "resume", "_selected_action": [purchase_id]},
            follow=True,
        )

    assert "1 saga(s) resumed." in response.text
    assert enqueued == [purchase_id]


def test_sagas_cannot_be_added_or_deleted_by_hand(admin_client: Client) -> None:
    assert admin_client.get(reverse("admin:sagas_saga_add")).status_code == 403


def test_the_cancel_action_stops_a_saga_and_staff_without_change_rights_cannot_use_it(
    admin_client: Client,
    fake_identities: Any,
    start_saga: Callable[..., str],
    fake: FakeServices,
    enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    purchase_id = start_saga()
    viewer = logged_in_client(fake_identities.add("viewer@example.com"))  # staff, no superuser
    enqueued.clear()

    refused = viewer.post(
        reverse(CHANGELIST), {"action": "cancel", "_selected_action": [purchase_id]}, follow=True
    )
    assert saga_row(purchase_id).cancel_requested_at is None
    assert refused.status_code in (200, 403)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(CHANGELIST),
            {"action": "cancel", "_selected_action": [purchase_id]},
            follow=True,
        )

    assert "1 saga(s) cancel requested." in response.text
    assert enqueued == [purchase_id]
    assert run_to_rest(purchase_id, fake).state == SagaState.CANCELLED
    listed = admin_client.get(reverse(CHANGELIST), {"state__exact": "CANCELLED"})
    requested = admin_client.get(reverse(CHANGELIST), {"cancel_requested_at__isnull": "False"})
    assert purchase_id in listed.text and purchase_id in requested.text


def test_cancelling_a_saga_that_ended_is_refused_with_a_message(
    admin_client: Client, start_saga: Callable[..., str], fake: FakeServices
) -> None:
    done = start_saga()
    run_to_rest(done, fake)

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "cancel", "_selected_action": [done]}, follow=True
    )

    assert "there is nothing to cancel" in response.text
    assert saga_row(done).state == SagaState.COMPLETED
