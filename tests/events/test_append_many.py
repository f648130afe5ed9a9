"""Many customer events in one statement (``repository.append_customer_events``): sequences continue
each customer's own, consecutively and in the order given, also under concurrent writers."""

import asyncio
import uuid

import httpx2 as httpx
from sqlalchemy import text

from app.db import read_connection, unit_of_work
from app.events import repository
from app.events import service as events
from tests.fixtures.factories import create_customer


def _event(customer_id: uuid.UUID, n: int) -> dict[str, object]:
    return {**events.customer_event("order.created", {"n": n}), "customer_id": customer_id}


async def _sequences(customer_id: uuid.UUID) -> list[tuple[int, object]]:
    async with read_connection() as conn:
        rows = await conn.execute(
            text(
                "SELECT sequence, data->'n' FROM events WHERE customer_id = :c"
                " AND type = 'order.created' ORDER BY sequence"
            ),
            {"c": customer_id},
        )
        return [(row[0], row[1]) for row in rows]


async def test_events_continue_each_customers_sequence_in_order(client: httpx.AsyncClient) -> None:
    first = uuid.UUID((await create_customer(client))["id"])
    second = uuid.UUID((await create_customer(client))["id"])  # customer.created took sequence 1
    rows = [_event(second, 1), _event(first, 2), _event(second, 3), _event(second, 4)]
    async with unit_of_work() as conn:
        assert await repository.append_customer_events(conn, rows) == 4
    assert await _sequences(first) == [(2, 2)]
    assert await _sequences(second) == [(2, 1), (3, 3), (4, 4)]


async def test_concurrent_appends_for_the_same_customers_leave_no_gaps(
    client: httpx.AsyncClient,
) -> None:
    customers = [uuid.UUID((await create_customer(client))["id"]) for _ in range(3)]

    async def append(offset: int) -> None:
        # Each writer names the customers in a different order: the statement orders its locks.
        ordered = customers[offset:] + customers[:offset]
        async with unit_of_work() as conn:
            await repository.append_customer_events(
                conn, [_event(c, offset) for c in ordered for _ in range(5)]
            )

    await asyncio.gather(*(append(i % 3) for i in range(6)))
    for customer_id in customers:
        assert [s for s, _ in await _sequences(customer_id)] == list(range(2, 32))
