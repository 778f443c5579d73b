"""The outbox relay's loop, against fakes: no database, no broker.

`run_relay` is driven with a scripted `publish_batch` (rows published, or a failure),
a listener that never blocks, a stop event that records the waits it is asked for
instead of sleeping, and a fake publisher. Each case tells the timeline the loop went
through. The relay imports Django models, and this suite runs without Django settings,
so each case runs in a fresh interpreter with an outbox-only configuration (no database
is ever opened).
"""

from __future__ import annotations

import textwrap
from typing import Any

from common.testing import run_python_json

BATCH = 3  # the relay's batch size in every case
IDLE = 7.0  # seconds the listener is asked to wait once the outbox is drained

HARNESS = """
import json
import threading

import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["common.outbox"], DATABASES={}, USE_TZ=True)
django.setup()

from common.outbox import relay

timeline = []


class Stop(threading.Event):
    # A wait is recorded and returns at once: backoff and idle delays cost no time.
    stop_while_waiting = False

    def wait(self, timeout=None):
        timeline.append(["backoff", timeout])
        if self.stop_while_waiting:
            self.set()
        return self.is_set()


stop = Stop()


class FakePublisher:
    made = 0

    def __init__(self):
        FakePublisher.made += 1
        self.name = FakePublisher.made
        self.broken = False

    def publish(self, topic, key, value, headers=None):
        raise AssertionError("publish_batch is scripted: nothing publishes directly")

    def flush(self, timeout=0):
        timeline.append(["drain", self.name])


class FakeListener:
    def connect(self):
        timeline.append(["listen"])

    def wait(self, timeout, stop_event):
        timeline.append(["idle", timeout])

    def close(self):
        timeline.append(["unlisten"])


def run(script):
    # Each step of the script answers one publish_batch call: a row count, "fail"
    # (the batch raises), "break" (it raises and the producer is broken for good),
    # "fail, then stop" (it raises and a stop request arrives during the backoff) or
    # "stop" (a stop request arrives while a full batch is in hand). Past the script's
    # end, the outbox is empty and a stop request arrives.
    steps = list(script)

    def publish_batch(publisher, *, batch_size, flush_timeout):
        if not steps:
            stop.set()
            timeline.append(["batch", 0, publisher.name])
            return 0
        step = steps.pop(0)
        if step in ("fail", "break", "fail, then stop"):
            publisher.broken = step == "break"
            stop.stop_while_waiting = step == "fail, then stop"
            timeline.append(["batch", step, publisher.name])
            raise RuntimeError("the broker refused the batch")
        if step == "stop":
            stop.set()
            step = batch_size
        timeline.append(["batch", step, publisher.name])
        return step

    relay.publish_batch = publish_batch
    relay.OutboxListener = FakeListener
    relay.run_relay(
        batch_size=BATCH,
        stop_event=stop,
        idle_timeout=IDLE,
        publisher_factory=FakePublisher,
    )
    print(json.dumps(timeline))
"""


def relay_timeline(*script: int | str) -> list[list[Any]]:
    """What the relay did, in order, for these publish_batch outcomes."""
    code = f"BATCH = {BATCH}\nIDLE = {IDLE}\n{textwrap.dedent(HARNESS)}\nrun({list(script)!r})\n"
    return [list(event) for event in run_python_json(code)]


def test_full_batches_follow_each_other_without_waiting_and_a_partial_one_waits_idle() -> None:
    timeline = relay_timeline(BATCH, BATCH, 1)

    assert timeline == [
        ["listen"],  # LISTEN before the first scan: no NOTIFY falls in between
        ["batch", BATCH, 1],
        ["batch", BATCH, 1],
        ["batch", 1, 1],
        ["idle", IDLE],
        ["batch", 0, 1],
        ["idle", IDLE],
        ["unlisten"],
    ]


def test_a_failed_batch_is_drained_then_retried_after_a_growing_backoff() -> None:
    timeline = relay_timeline("fail", "fail", "fail", 1)

    assert timeline == [
        ["listen"],
        ["batch", "fail", 1],
        ["drain", 1],
        ["backoff", 0.5],
        ["batch", "fail", 1],
        ["drain", 1],
        ["backoff", 1.0],
        ["batch", "fail", 1],
        ["drain", 1],
        ["backoff", 2.0],
        ["batch", 1, 1],  # the same publisher: draining kept it
        ["idle", IDLE],
        ["batch", 0, 1],
        ["idle", IDLE],
        ["unlisten"],
    ]


def test_a_success_resets_the_backoff() -> None:
    timeline = relay_timeline("fail", "fail", 1, "fail")

    backoffs = [event[1] for event in timeline if event[0] == "backoff"]
    assert backoffs == [0.5, 1.0, 0.5]


def test_a_broken_publisher_is_replaced_rather_than_drained() -> None:
    timeline = relay_timeline("break", 2)

    assert timeline == [
        ["listen"],
        ["batch", "break", 1],
        ["backoff", 0.5],
        ["batch", 2, 2],  # a new producer from the factory
        ["idle", IDLE],
        ["batch", 0, 2],
        ["idle", IDLE],
        ["unlisten"],
    ]


def test_a_stop_request_lets_the_batch_in_hand_finish_and_starts_no_other() -> None:
    timeline = relay_timeline(BATCH, "stop", BATCH)

    assert timeline == [
        ["listen"],
        ["batch", BATCH, 1],
        ["batch", BATCH, 1],  # stopped while in hand: finished, then no more
        ["idle", IDLE],  # the listener returns at once on a set stop event
        ["unlisten"],
    ]


def test_a_stop_request_during_the_backoff_ends_the_relay_without_another_batch() -> None:
    timeline = relay_timeline("fail, then stop", BATCH)

    assert timeline == [
        ["listen"],
        ["batch", "fail, then stop", 1],
        ["drain", 1],
        ["backoff", 0.5],
        ["unlisten"],
    ]
