"""Orders written while refreshes run: no increment is lost, and nobody deadlocks."""

import asyncio
import random

import httpx2 as httpx
import pytest
from sqlalchemy import text

from app.analytics import refresh
from app.db import read_connection, unit_of_work
from tests.analytics.conftest import AS_OF, Order, order_payload, post_orders
from tests.fixtures.factories import create_customer

# The order figures recomputed from the orders (the definition both writers must reach).
RECOMPUTED = """
SELECT o.customer_id, count(*) AS order_count, sum(o.total) AS gross_revenue,
       coalesce((SELECT sum(r.amount) FROM order_refunds r WHERE r.customer_id = o.customer_id), 0)
           AS refunded_amount,
       min(o.occurred_at) AS first_order_at, max(o.occurred_at) AS last_order_at
FROM orders o WHERE o.status <> 'cancelled' GROUP BY o.customer_id ORDER BY o.customer_id
"""
STORED = """
SELECT customer_id, order_count, gross_revenue, refunded_amount, first_order_at, last_order_at
FROM customer_metrics WHERE order_count > 0 ORDER BY customer_id
"""

# Locks the rows in customer order first, as every writer does (or it deadlocks with them).
DRIFT = """
WITH locked AS (SELECT customer_id FROM customer_metrics ORDER BY customer_id FOR UPDATE)
UPDATE customer_metrics m SET refund_count = 99 FROM locked WHERE m.customer_id = locked.customer_id
"""


async def test_no_lost_update_with_orders_during_refreshes(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refresh, "CHUNK_SIZE", 4)  # many chunks, many short transactions
    ids = [(await create_customer(client))["id"] for _ in range(24)]
    await post_orders(client, [order_payload(c, Order(30, "10.00"), 0) for c in ids])
    rng = random.Random(9)
    stop = asyncio.Event()

    async def writer(w: int) -> int:
        written = 0
        while not stop.is_set():
            # Batches naming customers in any order, as clients send them.
            chosen = rng.sample(ids, 6)
            bodies = [
                order_payload(c, Order(rng.randrange(0, 300), f"{rng.randrange(1, 99)}.50"), 0)
                | {"external_id": f"w{w}-{written}-{i}"}
                for i, c in enumerate(chosen)
            ]
            await post_orders(client, bodies)
            written += len(bodies)
        return written

    async def refreshes() -> None:
        for _ in range(8):
            # Every row drifts (a column left out of the comparison), so each refresh rewrites
            # every row's figures while the orders come in: the case a stale write would lose.
            async with unit_of_work() as conn:
                await conn.execute(text(DRIFT))
            await refresh.refresh(as_of=AS_OF, refresh_id=None)
        stop.set()

    writers = [asyncio.create_task(writer(w)) for w in range(3)]
    await asyncio.wait_for(refreshes(), timeout=120)
    written = await asyncio.wait_for(asyncio.gather(*writers), timeout=60)
    assert sum(written) > 0
    async with read_connection() as conn:
        expected = [tuple(r) for r in await conn.execute(text(RECOMPUTED))]
        stored = [tuple(r) for r in await conn.execute(text(STORED))]
    assert stored == expected
