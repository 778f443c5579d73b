"""The set-based batch forms of the inventory step, in-process against the test database.

The oracle is the single call: a batch must answer every item (result, or refusal with
its code, message and details) and leave stock and reservations exactly as the single
calls applied one by one in purchase-id order would have. Random waves mix every case.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from django.db import connection, transaction

from common.cache import cache_client
from common.errors import ApplicationError
from common.ids import parse_purchase_id, parse_uuid
from product_svc.catalog import batches, selectors, services
from product_svc.catalog.models import Product, Reservation, ReservationLine

pytestmark = pytest.mark.django_db

UNKNOWN = 987654321987

Outcome = Any
"""A result dataclass, or an ApplicationError as (code, message, details)."""


class Rollback(Exception):
    pass


def _product(inventory: int) -> Product:
    category = services.category_create(name=f"wave-{uuid.uuid4().hex[:10]}")
    return services.product_create(
        category_id=category.id, name="p", price=100, inventory=inventory
    )


def _comparable(outcome: object) -> Outcome:
    if isinstance(outcome, ApplicationError):
        return (outcome.code, outcome.message, outcome.details)
    return outcome


def _call(work: Callable[[], object]) -> Outcome:
    try:
        return _comparable(work())
    except ApplicationError as error:
        return _comparable(error)


def _handling_order(purchase_ids: Sequence[object]) -> list[int]:
    """The order a batch decides its items in: by purchase id, repeats as they came
    (an id that is not a UUID first; it is refused before any database work)."""

    def key(position: int) -> str:
        parsed = parse_uuid(purchase_ids[position])
        return "" if parsed is None else str(parsed)

    return sorted(range(len(purchase_ids)), key=key)


def _state(products: Sequence[Product], purchases: Sequence[str]) -> object:
    """Stock of the products, and every reservation of the purchases with its lines."""
    ids = [uuid.UUID(p) for p in purchases]
    return (
        list(
            Product.objects.filter(id__in=[p.id for p in products]).values_list("id", "inventory")
        ),
        sorted(Reservation.objects.filter(purchase_id__in=ids).values_list("purchase_id", "state")),
        sorted(
            ReservationLine.objects.filter(reservation_id__in=ids).values_list(
                "reservation_id", "product_id", "quantity"
            )
        ),
    )


def _one_by_one(
    products: Sequence[Product],
    purchases: Sequence[str],
    calls: list[Callable[[], object]],
    order: list[int],
) -> tuple[dict[int, Outcome], object]:
    """The outcomes of the single calls in `order`, and the state they leave; rolled
    back, so the batch starts from the same state."""
    outcomes: dict[int, Outcome] = {}
    with contextlib.suppress(Rollback), transaction.atomic():
        for position in order:
            outcomes[position] = _call(calls[position])
        state = _state(products, purchases)
        raise Rollback
    return outcomes, state


def _world(
    seed: int,
) -> tuple[random.Random, list[Product], list[str], dict[str, list[tuple[int, int]]]]:
    """Products with little stock, and purchases already reserved, released, released
    before any reserve (tombstones) or new; each with the lines it usually asks for."""
    rng = random.Random(seed)
    products = [_product(inventory=rng.randint(0, 6)) for _ in range(3)]
    product_ids = [p.id for p in products]
    purchases = [str(uuid.uuid4()) for _ in range(10)]
    usual = {
        p: [(i, rng.randint(1, 3)) for i in rng.sample(product_ids, rng.randint(1, 2))]
        for p in purchases
    }
    for purchase in purchases:
        history = rng.choice(["new", "new", "reserved", "released", "tombstone"])
        purchase_id = uuid.UUID(purchase)
        if history in ("reserved", "released"):
            with contextlib.suppress(ApplicationError):
                services.inventory_reserve(purchase_id=purchase_id, items=usual[purchase])
        if history in ("released", "tombstone"):
            services.inventory_release(purchase_id=purchase_id)
    return rng, products, purchases, usual


def _random_lines(
    rng: random.Random, products: Sequence[Product], usual: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    roll = rng.random()
    if roll < 0.5:
        return list(usual)
    if roll < 0.55:
        return []  # INVALID_INPUT
    ids = [p.id for p in products] + [UNKNOWN]
    return [
        (rng.choice(ids), rng.randint(0 if roll < 0.6 else 1, 3)) for _ in range(rng.randint(1, 3))
    ]


@pytest.mark.parametrize("seed", range(25))
def test_a_random_reserve_wave_answers_and_leaves_what_single_calls_one_by_one_would(
    seed: int,
) -> None:
    rng, products, purchases, usual = _world(seed)
    commands = []
    for _ in range(30):
        purchase = rng.choice([*purchases, "not-a-uuid"])
        commands.append(
            batches.ReserveCommand(
                purchase, _random_lines(rng, products, usual.get(purchase, [(products[0].id, 1)]))
            )
        )

    def single(command: batches.ReserveCommand) -> Callable[[], object]:
        return lambda: services.inventory_reserve(
            purchase_id=parse_purchase_id(command.purchase_id), items=command.items
        )

    order = _handling_order([c.purchase_id for c in commands])
    expected, expected_state = _one_by_one(
        products, purchases, [single(c) for c in commands], order
    )

    outcomes = batches.inventory_reserve_batch(commands=commands)

    assert [_comparable(o) for o in outcomes] == [expected[i] for i in range(len(commands))]
    assert _state(products, purchases) == expected_state


@pytest.mark.parametrize("seed", range(10))
def test_a_random_release_wave_answers_and_leaves_what_single_calls_one_by_one_would(
    seed: int,
) -> None:
    rng, products, purchases, _usual = _world(seed)
    purchase_ids: list[object] = [rng.choice([*purchases, "", "x"]) for _ in range(25)]

    def single(purchase_id: object) -> Callable[[], object]:
        return lambda: services.inventory_release(purchase_id=parse_purchase_id(purchase_id))

    order = _handling_order(purchase_ids)
    expected, expected_state = _one_by_one(
        products, purchases, [single(p) for p in purchase_ids], order
    )

    outcomes = batches.inventory_release_batch(purchase_ids=purchase_ids)

    assert [_comparable(o) for o in outcomes] == [expected[i] for i in range(len(purchase_ids))]
    assert _state(products, purchases) == expected_state


def test_a_wave_invalidates_the_cached_stock_of_the_products_it_changed_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    product = _product(inventory=10)
    assert selectors.product_get(product_id=product.id)["inventory"] == 10  # type: ignore[index]
    purchase = uuid.uuid4()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        batches.inventory_reserve_batch(
            commands=[batches.ReserveCommand(str(purchase), [(product.id, 4)])] * 3
        )
    assert len(callbacks) == 1
    assert selectors.product_get(product_id=product.id)["inventory"] == 6  # type: ignore[index]

    with django_capture_on_commit_callbacks(execute=True):
        batches.inventory_release_batch(purchase_ids=[purchase, purchase])
    assert selectors.product_get(product_id=product.id)["inventory"] == 10  # type: ignore[index]


def test_a_wave_tells_every_other_process_in_one_message_naming_each_product_it_changed(
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Given a subscriber on the product cache's invalidation channel
    first, second = _product(inventory=10), _product(inventory=10)
    listener = selectors.product_cache().listener
    assert listener is not None
    node = cache_client().get_node_from_key(listener.channel)
    pubsub = redis.Redis(host=node.host, port=node.port).pubsub()
    pubsub.ssubscribe(listener.channel)
    confirmation = pubsub.get_message(timeout=10)
    assert confirmation is not None and confirmation["type"] == "ssubscribe"

    # when one wave reserves both products for three purchases
    with django_capture_on_commit_callbacks(execute=True):
        batches.inventory_reserve_batch(
            commands=[
                batches.ReserveCommand(str(uuid.uuid4()), [(first.id, 1), (second.id, 1)])
                for _ in range(3)
            ]
        )

    # then one message names both products (not one per product or per purchase)
    try:
        messages = []
        while (message := pubsub.get_message(timeout=1)) is not None:
            if message["type"] == "smessage":
                messages.append(json.loads(message["data"])["keys"])
    finally:
        pubsub.close()
    assert messages == [sorted([str(first.id), str(second.id)], key=int)]


# ------------------------------------------------------------ concurrency


@pytest.mark.django_db(transaction=True)
def test_single_calls_and_waves_for_the_same_purchases_never_deadlock_nor_lose_stock() -> None:
    # Retried waves, single retries and compensations of the same purchases at once:
    # every transaction takes products by id, then reservation rows by purchase id.
    products = [_product(inventory=1000) for _ in range(3)]
    purchases = [str(uuid.uuid4()) for _ in range(12)]
    rng = random.Random(15)
    lines = {
        p: [(product.id, rng.randint(1, 3)) for product in rng.sample(products, 2)]
        for p in purchases
    }
    workers = 8
    start = threading.Barrier(workers)

    def run(seed: int) -> None:
        chosen = random.Random(seed)
        start.wait()
        try:
            for _ in range(6):
                shuffled = chosen.sample(purchases, len(purchases))
                match chosen.randrange(4):
                    case 0:
                        batches.inventory_reserve_batch(
                            commands=[batches.ReserveCommand(p, lines[p]) for p in shuffled]
                        )
                    case 1:
                        for p in shuffled[:4]:
                            with contextlib.suppress(ApplicationError):
                                services.inventory_reserve(purchase_id=uuid.UUID(p), items=lines[p])
                    case 2:
                        batches.inventory_release_batch(purchase_ids=shuffled[:6])
                    case _:
                        for p in shuffled[:3]:
                            services.inventory_release(purchase_id=uuid.UUID(p))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, range(workers)))  # a deadlock would raise here

    held: dict[int, int] = {}
    for product_id, quantity in ReservationLine.objects.filter(
        reservation__state=Reservation.State.RESERVED
    ).values_list("product_id", "quantity"):
        held[product_id] = held.get(product_id, 0) + quantity
    for product in products:
        assert Product.objects.get(id=product.id).inventory == 1000 - held.get(product.id, 0)
