"""The follower keeps dynamic segments current as data changes: after any sequence of profile
changes, orders, refunds and deletions, followed to the end of the feed, membership is exactly what
a full refresh makes it (a full refresh then moves no one), and each customer's entered and exited
events alternate (one per real change, none twice)."""

import asyncio
import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.db import read_connection
from app.segments.follower import Follower
from tests.fixtures.events import wait_stamped
from tests.fixtures.factories import create_customer, create_order, money

RULES: dict[str, dict[str, Any]] = {
    "tea in CN": {
        "all": [
            {"field": "country", "op": "eq", "value": "CN"},
            {"field": "tags", "op": "contains", "value": "tea"},
        ]
    },
    "buyers": {
        "any": [
            {"event": "order", "within_days": 30, "count": {"op": "gte", "value": 2}},
            {"field": "metrics.net_revenue", "op": "gte", "value": "200.00"},
        ]
    },
}

steps = st.lists(
    st.tuples(
        st.sampled_from(["country", "tags", "order", "order", "refund", "delete", "follow"]),
        st.integers(0, 2),
        st.sampled_from(["CN", "DE", "50.00", "150.00"]),
    ),
    min_size=1,
    max_size=10,
)


def _yesterday() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).isoformat()


async def _history() -> dict[tuple[str, str], list[str]]:
    """Each (segment name, customer)'s segment events, in the customer's sequence order."""
    async with read_connection() as conn:
        rows = await conn.execute(
            text(
                "SELECT data->>'segment_name' AS segment, customer_id, type FROM events "
                "WHERE type LIKE 'segment.%' ORDER BY customer_id, sequence"
            )
        )
        found: dict[tuple[str, str], list[str]] = defaultdict(list)
        for row in rows:
            found[(row.segment, str(row.customer_id))].append(row.type)
        return found


async def test_following_equals_a_full_refresh(client: httpx.AsyncClient) -> None:
    segments = {}
    for name, rule in RULES.items():
        response = await client.post("/v1/segments", json={"name": name, "rule": rule})
        assert response.status_code == 201, response.text
        segments[name] = response.json()["id"]
    follower = Follower(batch_size=7)
    loop = asyncio.get_running_loop()
    checked = {"examples": 0, "moves": 0}

    async def check(plan: list[tuple[str, int, str]]) -> None:
        people = [await create_customer(client, country="CN", tags=["tea"]) for _ in range(3)]
        orders: dict[int, list[str]] = defaultdict(list)
        gone: set[int] = set()
        for action, who, value in plan:
            customer = people[who]["id"]
            if who in gone and action != "follow":
                continue
            if action == "country":
                await client.patch(f"/v1/customers/{customer}", json={"country": value[:2]})
            elif action == "tags":
                tags = ["tea"] if value in ("CN", "50.00") else ["coffee"]
                await client.patch(f"/v1/customers/{customer}", json={"tags": tags})
            elif action == "order":
                amount = value if "." in value else "120.00"
                item = {"sku": "S", "quantity": 1, "unit_price": money(amount)}
                order = await create_order(
                    client, customer, items=[item], total=money(amount), occurred_at=_yesterday()
                )
                orders[who].append(order["id"])
            elif action == "refund" and orders[who]:
                await client.post(
                    f"/v1/orders/{orders[who][-1]}/refunds", json={"amount": money("10.00")}
                )
            elif action == "delete":
                await client.delete(f"/v1/customers/{customer}")
                gone.add(who)
            elif action == "follow":
                # The follower runs between changes too, so customers enter and later leave.
                await wait_stamped()
                await follower.catch_up()
        await wait_stamped()
        await follower.catch_up()
        for segment_id in segments.values():
            refreshed = await client.post(f"/v1/segments/{segment_id}/refresh")
            assert refreshed.status_code == 200, refreshed.text
            assert (refreshed.json()["entered"], refreshed.json()["exited"]) == (0, 0), plan
        for (segment, customer), types in (await _history()).items():
            expected = list(itertools.islice(itertools.cycle(
                ["segment.member_entered", "segment.member_exited"]), len(types)))  # fmt: skip
            assert types == expected, (segment, customer, types)
        checked["examples"] += 1

    @given(plan=steps)
    @settings(
        max_examples=40,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def property_(plan: list[tuple[str, int, str]]) -> None:
        asyncio.run_coroutine_threadsafe(check(plan), loop).result(timeout=120)

    await asyncio.to_thread(property_)
    history = await _history()
    moves = sum(len(types) for types in history.values())
    # The plans moved customers in and out of both segments, not just into one.
    assert checked["examples"] >= 30
    assert {segment for segment, _ in history} == set(RULES)
    assert any("segment.member_exited" in types for types in history.values()), history
    assert moves > 50, moves


async def test_a_change_is_followed_without_a_refresh(client: httpx.AsyncClient) -> None:
    rule = RULES["tea in CN"]
    segment = (await client.post("/v1/segments", json={"name": "tea", "rule": rule})).json()
    customer = await create_customer(client, country="DE", tags=["tea"])
    follower = Follower()
    await wait_stamped()
    await follower.catch_up()
    members = f"/v1/segments/{segment['id']}/members"
    assert (await client.get(members)).json()["data"] == []
    await client.patch(f"/v1/customers/{customer['id']}", json={"country": "CN"})
    await wait_stamped()
    await follower.catch_up()
    assert [m["customer_id"] for m in (await client.get(members)).json()["data"]] == [
        customer["id"]
    ]
    # Its own entered event is followed too, and moves no one; then there is nothing left.
    await wait_stamped()
    await follower.catch_up()
    assert await follower.step() is None
    history = await _history()
    assert list(history.values()) == [["segment.member_entered"]]
