"""A killed Kafka consumer stalls its topic only while supervisord restarts it.

Each consumer process is a static member of its group (common.kafka.config): the one
supervisord starts in place of a killed one takes the same partitions back at once,
instead of waiting out the dead member's session (45 s), which a customer would see as
purchases that do not start, or do not end, for most of a minute.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from deploy.local import supervisor
from tests.e2e.conftest import Customer, purchase, wait_final

# Far below the 45 s session a dynamic member would wait out; a restart takes ~3 s.
WITHIN_SECONDS = 20.0


@pytest.mark.parametrize("program", ["orchestrator-consumer", "purchase-consumer"])
def test_a_purchase_made_as_a_consumer_is_killed_ends_soon_after_its_restart(
    customer: Customer, make_product: Callable[..., int], program: str
) -> None:
    # Given a platform that has just completed a purchase
    product_id = make_product(inventory=5)
    assert wait_final(customer, purchase(customer, [(product_id, 1)]))["status"] == "COMPLETED"

    # when a consumer is SIGKILLed and a customer buys at once
    os.kill(supervisor.pids()[program], signal.SIGKILL)
    started = time.monotonic()
    purchase_id = purchase(customer, [(product_id, 1)])

    # then the purchase completes within a few seconds of the consumer's restart
    assert wait_final(customer, purchase_id)["status"] == "COMPLETED"
    took = time.monotonic() - started
    assert took < WITHIN_SECONDS, f"the purchase took {took:.0f} s after {program} was killed"
