"""The metrics step on the fixture set (tests/analytics/conftest.py), every figure worked out by hand.

As of AS_OF = 2026-06-30 with the default settings: the cutoff is 2026-07-01 00:00 UTC; the RFM
window the 365 days before it (orders 0..364 days before AS_OF); new <= 90 days, at_risk > 180,
churned > 365; tiers 80 / 15 / 5.

RFM ranks the 8 customers with an order in the window (n = 8, n - 1 = 7); a score is
LEAST(5, 1 + floor(5 * below / 7)), ``below`` the number of ranked values below the customer's:
below 0, 1 -> 1; 2 -> 2 (10/7); 3, 4 -> 3 (15/7, 20/7); 5 -> 4 (25/7); 6, 7 -> 5.

R (days since the last order, fewer ranks higher):
  c5 200 (below 0) 1 · c12 50 (1) 1 · c2 30, c11 30 (tie, 2) 2 · c7 20 (4) 3 · c4 10 (5) 4 ·
  c1 5 (6) 5 · c3 2 (7) 5
F (orders in the window):
  c3 c4 c7 c12 1 (tie, 0) 1 · c5 c11 2 (tie, 4) 3 · c2 4 (6) 5 · c1 5 (7) 5
M (net revenue of those orders; c4's refund before the cutoff counts, c12's after it does not,
   c7's order 500 days back is outside the window):
  c3 50 (0) 1 · c7 120 (1) 1 · c5 160 (2) 2 · c4 200 (3) 3 · c11 400, c12 400 (tie, 4) 3 ·
  c1 500 (6) 5 · c2 800 (7) 5
Segments (R, F): c1 (5,5) champions · c2 (2,5) cannot_lose · c3 (5,1) new · c4 (4,1) promising ·
  c5 (1,3) at_risk · c7 (3,1) about_to_sleep · c11 (2,3) at_risk · c12 (1,1) lost.

Value tiers on the net revenue as of the cutoff (every order before it, refunds before it):
  c6 2200, c2 800, c1 500, c11 400, c12 400, c4 200, c5 160, c7 160, c3 50, c13 0;
  total T = 4870; A while the revenue strictly above < 0.80 T = 3896, B while < 0.95 T = 4626.5.
  c6 above 0 A · c2 2200 A · c1 3000 A · c11, c12 3500 A (tie: counted one after the other,
  the second would have 3900 above and be B) · c4 4300 B · c5, c7 4500 B (tie: the second would
  have 4660 and be C) · c3 4820 C · c13 0 revenue C · c8 (cancelled only), c9 (orders after the
  cutoff only) and c10 (none): no tier.

Lifecycle: c1 last 5, first 100 -> active · c2 active · c3 first 2 -> new · c4 new · c5 last 200 >
  180 -> at_risk · c6 400 > 365 -> churned · c7 last 20 after a 480-day gap -> reactivated · c8,
  c9, c10 prospect · c11 first 150 -> active · c12 first 50 -> new · c13 380 -> churned.
"""

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx2 as httpx
import pytest
from sqlalchemy import text

from app.analytics import repository
from app.analytics.refresh import refresh as refresh_step
from app.core import clock
from app.db import read_connection, unit_of_work
from tests.analytics.conftest import AS_OF, FixtureSet, Order, day, order_payload, post_orders
from tests.fixtures.factories import create_customer, money

RFM: dict[str, tuple[int, int, int, str] | None] = {
    "c1": (5, 5, 5, "champions"),
    "c2": (2, 5, 5, "cannot_lose"),
    "c3": (5, 1, 1, "new"),
    "c4": (4, 1, 3, "promising"),
    "c5": (1, 3, 2, "at_risk"),
    "c6": None,
    "c7": (3, 1, 1, "about_to_sleep"),
    "c8": None,
    "c9": None,
    "c10": None,
    "c11": (2, 3, 3, "at_risk"),
    "c12": (1, 1, 3, "lost"),
    "c13": None,
}
TIERS = {
    "c1": "A",
    "c2": "A",
    "c3": "C",
    "c4": "B",
    "c5": "B",
    "c6": "A",
    "c7": "B",
    "c8": None,
    "c9": None,
    "c10": None,
    "c11": "A",
    "c12": "A",
    "c13": "C",
}
STAGES = {
    "c1": "active",
    "c2": "active",
    "c3": "new",
    "c4": "new",
    "c5": "at_risk",
    "c6": "churned",
    "c7": "reactivated",
    "c8": "prospect",
    "c9": "prospect",
    "c10": "prospect",
    "c11": "active",
    "c12": "new",
    "c13": "churned",
}
RECENCY = {
    "c1": 5,
    "c2": 30,
    "c3": 2,
    "c4": 10,
    "c5": 200,
    "c6": 400,
    "c7": 20,
    "c11": 30,
    "c12": 50,
    "c13": 380,
}
# The order figures are over every order (not as of): (orders, gross, refunded, net, refunds).
ORDER_FIGURES = {
    "c1": (5, "500.00", "0.00", "500.00", 0),
    "c4": (1, "300.00", "100.00", "200.00", 1),
    "c7": (2, "160.00", "0.00", "160.00", 0),
    "c9": (1, "75.00", "0.00", "75.00", 0),
    "c12": (1, "400.00", "150.00", "250.00", 1),
    "c13": (1, "90.00", "90.00", "0.00", 1),
    "c8": (0, "0.00", "0.00", "0.00", 0),
    "c10": (0, "0.00", "0.00", "0.00", 0),
}


async def metrics(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}/metrics")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def lifecycle_events() -> list[dict[str, Any]]:
    async with read_connection() as conn:
        rows = await conn.execute(
            text(
                "SELECT customer_id, sequence, data FROM events "
                "WHERE type = 'customer.lifecycle_changed' ORDER BY customer_id, sequence"
            )
        )
        return [dict(row._mapping) for row in rows]


async def test_fixture_set_as_of(client: httpx.AsyncClient, fixture_set: FixtureSet) -> None:
    figures = await refresh_step(as_of=AS_OF, refresh_id=None)
    assert figures["ranked"] == 8
    assert figures["lifecycle_changes"] == 10
    for name, customer_id in fixture_set.ids.items():
        found = await metrics(client, customer_id)
        rfm = RFM[name]
        got = (found["rfm_recency"], found["rfm_frequency"], found["rfm_monetary"])
        assert got == (rfm[:3] if rfm else (None, None, None)), name
        assert found["rfm_segment"] == (rfm[3] if rfm else None), name
        assert found["value_tier"] == TIERS[name], name
        assert found["lifecycle_stage"] == STAGES[name], name
        assert found["recency_days"] == RECENCY.get(name), name
        if name in ORDER_FIGURES:
            count, gross, refunded, net, refunds = ORDER_FIGURES[name]
            assert found["order_count"] == count, name
            assert found["gross_revenue"] == money(gross), name
            assert found["refunded_amount"] == money(refunded), name
            assert found["net_revenue"] == money(net), name
            assert found["refund_count"] == refunds, name
    c1 = await metrics(client, fixture_set.ids["c1"])
    assert c1["as_of"] == AS_OF.isoformat()
    assert c1["first_order_at"] == day(100)
    assert c1["average_order_value"] == money("100.00")
    assert c1["computed_at"] is not None
    assert c1["lifecycle_changed_at"] == c1["computed_at"]
    # No row at all: a prospect with zero figures and nothing computed.
    c10 = await metrics(client, fixture_set.ids["c10"])
    assert c10["as_of"] is None
    assert c10["average_order_value"] is None

    # One event per change, none for the customers who stay prospects.
    events = await lifecycle_events()
    by_customer = {str(e["customer_id"]): e["data"] for e in events}
    assert len(events) == 10
    assert {fixture_set.name_of(c) for c in by_customer} == {
        name for name, stage in STAGES.items() if stage != "prospect"
    }
    c7 = by_customer[fixture_set.ids["c7"]]
    assert c7 == {
        "customer_id": fixture_set.ids["c7"],
        "previous_stage": "prospect",
        "stage": "reactivated",
        "as_of": AS_OF.isoformat(),
    }

    # The same day again: nothing changes, nothing is emitted.
    again = await refresh_step(as_of=AS_OF, refresh_id=None)
    assert again["lifecycle_changes"] == 0
    assert len(await lifecycle_events()) == 10
    c1_again = await metrics(client, fixture_set.ids["c1"])
    assert c1_again["lifecycle_changed_at"] == c1["lifecycle_changed_at"]
    assert c1_again["computed_at"] > c1["computed_at"]

    # 100 days later: c3's first order is 102 days old (new -> active); c4 (110), c12 (150) too;
    # c9's order (54 days) makes it new; c5 (300 > 180) stays at_risk; c7 (120 <= 180) stays
    # reactivated (its latest order still came after the long gap); c11, c2 and c1 stay active;
    # c6, c13 churned.
    later = await refresh_step(as_of=AS_OF + timedelta(days=100), refresh_id=None)
    assert later["lifecycle_changes"] == 4
    events = await lifecycle_events()
    changes = {
        fixture_set.name_of(str(e["customer_id"])): (
            e["data"]["previous_stage"],
            e["data"]["stage"],
        )
        for e in events
        if e["data"]["as_of"] != AS_OF.isoformat()
    }
    assert changes == {
        "c3": ("new", "active"),
        "c4": ("new", "active"),
        "c12": ("new", "active"),
        "c9": ("prospect", "new"),
    }


async def test_a_lone_ranked_customer_scores_one(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await post_orders(client, [order_payload(customer["id"], Order(3, "10.00"), 0)])
    await refresh_step(as_of=AS_OF, refresh_id=None)
    found = await metrics(client, customer["id"])
    assert (found["rfm_recency"], found["rfm_frequency"], found["rfm_monetary"]) == (1, 1, 1)
    assert found["rfm_segment"] == "lost"
    assert found["value_tier"] == "A"  # nobody above: 0 < 0.8 x its own revenue
    assert found["lifecycle_stage"] == "new"


async def _stored_figures() -> dict[str, tuple[Any, ...]]:
    async with read_connection() as conn:
        rows = await conn.execute(
            text(
                "SELECT customer_id, order_count, gross_revenue, refunded_amount, net_revenue, "
                "refund_count, first_order_at, last_order_at FROM customer_metrics"
            )
        )
        return {str(r[0]): tuple(r[1:]) for r in rows}


async def test_order_figures_are_recomputed_where_they_differ(
    client: httpx.AsyncClient, fixture_set: FixtureSet
) -> None:
    before = await _stored_figures()
    c1, c4 = fixture_set.ids["c1"], fixture_set.ids["c4"]
    async with unit_of_work() as conn:
        await conn.execute(
            text(
                "UPDATE customer_metrics SET order_count = 99, net_revenue = 1 WHERE customer_id = :c"
            ),
            {"c": c1},
        )
        await conn.execute(text("DELETE FROM customer_metrics WHERE customer_id = :c"), {"c": c4})
    figures = await refresh_step(as_of=AS_OF, refresh_id=None)
    assert figures["figures_corrected"] == 1
    assert figures["rows_added"] == 1
    assert await _stored_figures() == before
    # Nothing differs any more: nothing is rewritten.
    assert (await refresh_step(as_of=AS_OF, refresh_id=None))["figures_corrected"] == 0


async def test_the_revision_guard_leaves_a_concurrent_update_alone(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """An order committed after the refresh's snapshot, while the refresh's UPDATE waits for its
    row: the row's revision moved, so the refresh's (stale) figures are not written over it."""
    customer = await create_customer(client)
    await post_orders(client, [order_payload(customer["id"], Order(3, "10.00"), 0)])
    # The stored row differs from its orders (without a new revision): the refresh rewrites it.
    async with unit_of_work() as conn:
        await conn.execute(
            text("UPDATE customer_metrics SET refund_count = 7 WHERE customer_id = :c"),
            {"c": customer["id"]},
        )
    writer = await asyncpg.connect(database_url)
    try:
        writer_tx = writer.transaction()
        await writer_tx.start()
        # An order's own transaction: the order and its increment (revision + 1), row locked.
        await writer.execute(
            "INSERT INTO orders (customer_id, id, status, channel, currency, subtotal, total, "
            "occurred_at, created_at, updated_at) VALUES ($1, gen_random_uuid(), 'paid', 'web', "
            "'CNY', 5, 5, now(), now(), now())",
            uuid.UUID(customer["id"]),
        )
        await writer.execute(
            "UPDATE customer_metrics SET order_count = order_count + 1, gross_revenue = "
            "gross_revenue + 5, net_revenue = net_revenue + 5, revision = revision + 1 "
            "WHERE customer_id = $1",
            uuid.UUID(customer["id"]),
        )

        async def write_figures() -> repository.OrderFigureWrites:
            async with unit_of_work() as conn:
                return await repository.write_order_figures(
                    conn, repository.FIRST_BOUND, uuid.UUID(int=2**128 - 1), clock.now()
                )

        task = asyncio.create_task(write_figures())
        await _wait_for_lock_wait(database_url)
        await writer_tx.commit()
        written = await task
    finally:
        await writer.close()
    assert (written.differing, written.corrected) == (1, 0)
    async with read_connection() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT order_count, net_revenue, refund_count FROM customer_metrics "
                    "WHERE customer_id = :c"
                ),
                {"c": customer["id"]},
            )
        ).one()
    # The concurrent update's values, untouched (the refresh read 1 order and 10.00).
    assert tuple(row) == (2, Decimal("15.00"), 7)


async def _wait_for_lock_wait(database_url: str) -> None:
    probe = await asyncpg.connect(database_url)
    try:
        for _ in range(250):
            waiting = await probe.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
    finally:
        await probe.close()
    pytest.fail("the refresh never waited for the order's row lock")
