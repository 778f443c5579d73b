"""The event stream of a purchase that has ended, through the edge: the story in its
order (the state it started from, every step by sequence, the final status last)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Customer, edge, purchase, steps_of, wait_final

FINAL = {"COMPLETED", "FAILED", "NEEDS_ATTENTION"}


def stream_of(customer: Customer, purchase_id: str, **headers: str) -> list[dict[str, Any]]:
    """The whole stream of an ended purchase (it ends by itself), as
    [{"event", "data", "id"}], comments and `retry:` left out."""
    response = edge(
        "GET",
        f"/api/v1/purchases/{purchase_id}/events",
        token=customer.token,
        headers={"Accept": "text/event-stream", **headers},
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and ": " in line)
        if "event" in fields:
            data = json.loads(fields["data"])
            events.append({"event": fields["event"], "data": data, "id": fields.get("id")})
    return events


@pytest.mark.parametrize(("currency_code", "ending"), [("VND", "COMPLETED"), ("XXX", "FAILED")])
def test_an_ended_purchase_streams_its_story_in_order_the_final_status_last(
    customer: Customer, make_product: Callable[..., int], currency_code: str, ending: str
) -> None:
    # Given a purchase that has ended (XXX: the payment is refused and the saga compensates)
    product = make_product(inventory=10)
    purchase_id = purchase(customer, [(product, 1)], currency_code=currency_code)
    final = wait_final(customer, purchase_id)
    assert final["status"] == ending

    # When its customer subscribes to its stream
    events = stream_of(customer, purchase_id)

    # Then it opens with the state a purchase starts from, not the end
    kinds = [e["event"] for e in events]
    assert kinds[0] == "state"
    assert events[0]["data"]["status"] == "PENDING"
    assert kinds[1:-1] == ["step"] * (len(events) - 2)
    # the steps come in the saga's order, as the purchase lists them
    steps = [e["data"] for e in events[1:-1]]
    sequences = [s["sequence"] for s in steps]
    assert sequences == sorted(sequences)
    assert [(s["step"], s["status"]) for s in steps] == steps_of(final)
    # no step says the purchase is still PENDING after one that ended it
    overall = [s["purchase_status"] for s in steps]
    assert overall[-1] == ending
    assert not FINAL & set(overall[:-1])
    # and the final status is the last event
    assert events[-1] == {
        "event": "status",
        "data": {"id": purchase_id, "status": ending, "reason": ""},
        "id": None,
    }

    # And a client that reconnects after the middle step gets the rest, in order
    middle = events[len(events) // 2]
    resumed = stream_of(customer, purchase_id, **{"Last-Event-ID": middle["id"]})
    assert resumed[0]["data"]["status"] == "PENDING"
    assert [e["data"] for e in resumed[1:]] == [e["data"] for e in events[len(events) // 2 + 1 :]]
