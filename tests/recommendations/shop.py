"""A small shop whose co-purchase statistics can be worked out by hand (docs/recommendations.md).

Orders counted by a refresh as of 2026-06-30 (not cancelled, before 2026-07-01 00:00 UTC, with
lines): N = 8.

    o1 A  TEA(2 x 50) CUP(20)             o5 C  TEA(50) HONEY(30)
    o2 A  TEA(60) CUP(20) HONEY(30)       o6 C  CUP(20, no category)
    o3 B  TEA(50) CUP(20)                 o7 D  GIFT(80)
    o4 B  TEA(50) POT(100)                o8 E  TEA(50) TEA(50) CUP(20, no name or category)

Not counted: o9 D (cancelled: TEA, POT, RARE), o10 E (at the cutoff: TEA, POT), o11 B (no lines).

Orders with: TEA 6, CUP 5, HONEY 2, POT 1, GIFT 1 (RARE: none). Customers: TEA 4 (A B C E),
CUP 4, HONEY 2, POT 1, GIFT 1. Together: TEA-CUP 4 (o1 o2 o3 o8), TEA-HONEY 2, CUP-HONEY 1,
TEA-POT 1.
"""

from typing import Any

import httpx2 as httpx

from tests.fixtures.factories import create_customer, money

N = 8
ORDERS_WITH = {"TEA": 6, "CUP": 5, "HONEY": 2, "POT": 1, "GIFT": 1}
CATEGORY = {"TEA": "tea", "CUP": "teaware", "HONEY": "food", "POT": "teaware", "GIFT": "tea"}


def line(sku: str, price: str, quantity: int = 1, **overrides: Any) -> dict[str, Any]:
    item = {
        "sku": sku,
        "name": sku.title(),
        "category": CATEGORY.get(sku, "tea"),
        "quantity": quantity,
        "unit_price": money(price),
    }
    item.update(overrides)
    return item


def order(customer_id: str, at: str, *items: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    total = sum(float(i["unit_price"]["amount"]) * i["quantity"] for i in items)
    body = {
        "customer_id": customer_id,
        "occurred_at": at,
        "items": list(items),
        "total": money(f"{overrides.pop('total', total):.2f}"),
    }
    body.update(overrides)
    return body


async def post_orders(client: httpx.AsyncClient, *orders: dict[str, Any]) -> None:
    response = await client.post("/v1/orders/batch", json={"items": list(orders)})
    assert response.status_code == 200, response.text
    assert response.json()["errors"] == 0, response.text


async def build_shop(client: httpx.AsyncClient) -> dict[str, str]:
    """The shop above; returns the customer ids by letter (F: a customer with no orders)."""
    ids = {letter: (await create_customer(client))["id"] for letter in "ABCDEF"}
    a, b, c, d, e = (ids[x] for x in "ABCDE")
    await post_orders(
        client,
        order(a, "2026-05-01T10:00:00Z", line("TEA", "50.00", 2), line("CUP", "20.00")),
        order(
            a,
            "2026-05-02T10:00:00Z",
            line("TEA", "60.00"),
            line("CUP", "20.00"),
            line("HONEY", "30.00"),
        ),
        order(b, "2026-05-03T10:00:00Z", line("TEA", "50.00"), line("CUP", "20.00")),
        order(b, "2026-05-04T10:00:00Z", line("TEA", "50.00"), line("POT", "100.00")),
        order(c, "2026-05-05T10:00:00Z", line("TEA", "50.00"), line("HONEY", "30.00")),
        order(c, "2026-06-01T10:00:00Z", line("CUP", "20.00", category=None, name="Cup v2")),
        order(d, "2026-05-07T10:00:00Z", line("GIFT", "80.00")),
        order(
            e,
            "2026-06-30T23:59:59Z",
            line("TEA", "50.00", name="Oolong tea"),
            line("TEA", "50.00", name="Oolong tea"),
            line("CUP", "20.00", name=None, category=None),
        ),
        order(
            d,
            "2026-06-30T12:00:00Z",
            line("TEA", "50.00", name="Cancelled name"),
            line("POT", "100.00"),
            line("RARE", "200.00"),
            status="cancelled",
        ),
        order(
            e, "2026-07-01T00:00:00Z", line("TEA", "55.00", name="Future"), line("POT", "100.00")
        ),
        order(b, "2026-05-10T10:00:00Z", total=15.0),
    )
    return ids
