"""The analytics fixture set: 13 customers with orders at chosen days before AS_OF (2026-06-30), a
few after it, refunds before and after the cutoff, and cancelled orders. The expected figures are
worked out by hand in tests/analytics/test_refresh_step.py."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.factories import create_customer, money

AS_OF = date(2026, 6, 30)
NAMES = [f"c{n}" for n in range(1, 14)]


def day(days_before: int) -> str:
    """Noon UTC of AS_OF minus ``days_before`` days (negative: after AS_OF)."""
    return f"{(AS_OF - timedelta(days=days_before)).isoformat()}T12:00:00Z"


@dataclass
class Order:
    days_before: int
    total: str
    status: str = "paid"
    # (days before AS_OF, amount) of each refund.
    refunds: list[tuple[int, str]] = field(default_factory=list)


# Window: the 365 days before the cutoff (orders at most 364 days before AS_OF).
HISTORY: dict[str, list[Order]] = {
    # 5 orders in the window, 100 each; a cancelled one never counts.
    "c1": [
        Order(5, "100.00"),
        Order(20, "100.00"),
        Order(40, "100.00"),
        Order(60, "100.00"),
        Order(100, "100.00"),
        Order(3, "999.00", status="cancelled"),
    ],
    "c2": [Order(30, "200.00"), Order(90, "200.00"), Order(150, "200.00"), Order(200, "200.00")],
    "c3": [Order(2, "50.00")],
    # 100 refunded before the cutoff.
    "c4": [Order(10, "300.00", refunds=[(8, "100.00")])],
    "c5": [Order(200, "80.00"), Order(250, "80.00")],
    # Outside the window.
    "c6": [Order(400, "2200.00")],
    # Back after 480 days.
    "c7": [Order(500, "40.00"), Order(20, "120.00")],
    # Only a cancelled order.
    "c8": [Order(10, "70.00", status="cancelled")],
    # Only an order after the cutoff.
    "c9": [Order(-46, "75.00")],
    # c10: no orders at all.
    "c10": [],
    "c11": [Order(30, "200.00"), Order(150, "200.00")],
    # Refunded after the cutoff: counts in full as of AS_OF.
    "c12": [Order(50, "400.00", refunds=[(-32, "150.00")])],
    # Fully refunded (before the cutoff), outside the window.
    "c13": [Order(380, "90.00", refunds=[(379, "90.00")])],
}


@dataclass
class FixtureSet:
    ids: dict[str, str]
    orders: dict[str, list[str]]  # order ids per customer, in HISTORY's order

    def name_of(self, customer_id: str) -> str:
        return next(name for name, i in self.ids.items() if i == customer_id)


async def post_orders(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[str]:
    response = await client.post("/v1/orders/batch", json={"items": bodies})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created"] * len(bodies), results
    return [r["id"] for r in results]


def order_payload(customer_id: str, order: Order, n: int) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "source": "fixture",
        "external_id": f"{customer_id}-{n}",
        "status": order.status,
        "occurred_at": day(order.days_before),
        "total": money(order.total),
    }


async def refund(
    client: httpx.AsyncClient, order_id: str, amount: str, days_before: int
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/orders/{order_id}/refunds",
        json={"amount": money(amount), "occurred_at": day(days_before)},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
async def fixture_set(client: httpx.AsyncClient) -> FixtureSet:
    ids = {name: (await create_customer(client))["id"] for name in NAMES}
    bodies, owners = [], []
    for name in NAMES:
        for n, order in enumerate(HISTORY[name]):
            bodies.append(order_payload(ids[name], order, n))
            owners.append(name)
    order_ids = await post_orders(client, bodies)
    orders: dict[str, list[str]] = {name: [] for name in NAMES}
    for name, order_id in zip(owners, order_ids, strict=True):
        orders[name].append(order_id)
    for name in NAMES:
        for order, order_id in zip(HISTORY[name], orders[name], strict=True):
            for days_before, amount in order.refunds:
                await refund(client, order_id, amount, days_before)
    return FixtureSet(ids, orders)
