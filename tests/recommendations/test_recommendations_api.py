"""GET /v1/customers/{id}/recommendations and Customer.recommendations on the hand-computed shop
(tests/recommendations/shop.py): cross-sells, upsells, the popular fallback, bought items left out,
limits, scopes and the GraphQL DataLoader."""

import uuid
from datetime import date, datetime
from typing import Any

import httpx2 as httpx
import pytest

from app.recommendations import stats
from tests.fixtures.api import assert_problem, count_statements, error_codes, gql
from tests.fixtures.factories import KeyFactory, bearer, create_customer, money
from tests.recommendations.shop import CATEGORY, build_shop, line, order, post_orders

HONEY_BECAUSE_OF_TEA = {
    "sku": "HONEY",
    "name": "Honey",
    "category": "food",
    "kind": "cross_sell",
    "score": pytest.approx(4 / 3, rel=1e-12),
    "reason": {
        "because_of": "TEA",
        "confidence": pytest.approx(2 / 6, rel=1e-12),
        "lift": pytest.approx(4 / 3, rel=1e-12),
        "orders_together": 2,
    },
}


def upsell(sku: str, category: str, above: str, orders: int = 1) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": sku.title(),
        "category": category,
        "kind": "upsell",
        "score": pytest.approx(orders / 6, rel=1e-12),
        "reason": {"category": category, "above_price": money(above)},
    }


def popular(sku: str, orders: int, name: str | None = None) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": name or sku.title(),
        "category": CATEGORY[sku],
        "kind": "popular",
        "score": pytest.approx(orders / 6, rel=1e-12),
        "reason": {"orders": orders},
    }


async def recommendations(
    client: httpx.AsyncClient, customer_id: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}/recommendations", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_cross_sells_upsells_and_the_popular_fallback(client: httpx.AsyncClient) -> None:
    ids = await build_shop(client)

    # Before any refresh there are no statistics: nothing to recommend, and it says so.
    before = await recommendations(client, ids["B"])
    assert before == {"customer_id": ids["B"], "refreshed_at": None, "items": []}

    await stats.refresh(as_of=date(2026, 6, 30), refresh_id=None)

    # B bought TEA, CUP and POT: HONEY goes with TEA; GIFT (80.00 on average) is a tea above the
    # 50.00 B paid for one; nothing in teaware is above POT's 100.00.
    b = await recommendations(client, ids["B"])
    assert b["items"] == [HONEY_BECAUSE_OF_TEA, upsell("GIFT", "tea", "50.00")]
    assert b["refreshed_at"] is not None
    assert (await recommendations(client, ids["B"], kind="upsell"))["items"] == [
        upsell("GIFT", "tea", "50.00")
    ]
    assert (await recommendations(client, ids["B"], limit=1))["items"] == [HONEY_BECAUSE_OF_TEA]

    # A bought all of TEA's partners: no cross-sell. Upsells above the most A paid per category
    # (TEA at 60.00, CUP at 20.00), equally popular, so by sku.
    a = await recommendations(client, ids["A"])
    assert a["items"] == [upsell("GIFT", "tea", "60.00"), upsell("POT", "teaware", "20.00")]
    # Asked for cross-sells only, A has none: the best sellers A has not bought.
    assert (await recommendations(client, ids["A"], kind="cross_sell"))["items"] == [
        popular("GIFT", 1),
        popular("POT", 1),
    ]

    # E's order at the cutoff (TEA at 55.00, POT) is not in the statistics but E did buy them:
    # POT is not offered and only teas above 55.00 are.
    e = await recommendations(client, ids["E"])
    assert e["items"] == [HONEY_BECAUSE_OF_TEA, upsell("GIFT", "tea", "55.00")]

    # C bought CUP without a category: no teaware upsell for C.
    assert (await recommendations(client, ids["C"]))["items"] == [upsell("GIFT", "tea", "50.00")]

    # D's only other order was cancelled: D bought GIFT alone, has no candidate, and gets the
    # best sellers, the cancelled order's TEA and POT included.
    d = await recommendations(client, ids["D"])
    assert d["items"] == [
        popular("TEA", 6, "Oolong tea"),
        popular("CUP", 5, "Cup v2"),
        popular("HONEY", 2),
        popular("POT", 1),
    ]
    # G's order comes after the refresh (the request reads every order of the customer): a CUP
    # filed under tea at 10.00. TEA goes with CUP, and is also a tea above 10.00; it is offered
    # once, as a cross-sell.
    g = (await create_customer(client))["id"]
    await post_orders(
        client, order(g, "2026-11-01T10:00:00Z", line("CUP", "10.00", category="tea"))
    )
    assert (await recommendations(client, g))["items"] == [
        {
            "sku": "TEA",
            "name": "Oolong tea",
            "category": "tea",
            "kind": "cross_sell",
            "score": pytest.approx(32 / 30, rel=1e-12),
            "reason": {
                "because_of": "CUP",
                "confidence": pytest.approx(4 / 5, rel=1e-12),
                "lift": pytest.approx(32 / 30, rel=1e-12),
                "orders_together": 4,
            },
        },
        upsell("GIFT", "tea", "10.00"),
    ]

    # F has no history at all.
    f = await recommendations(client, ids["F"], limit=2)
    assert f["items"] == [popular("TEA", 6, "Oolong tea"), popular("CUP", 5, "Cup v2")]
    assert [i["sku"] for i in (await recommendations(client, ids["F"]))["items"]] == [
        "TEA",
        "CUP",
        "HONEY",
        "GIFT",
        "POT",
    ]


async def test_problems_and_scopes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    customer = await create_customer(client)
    path = f"/v1/customers/{customer['id']}/recommendations"

    assert_problem(
        await client.get(f"/v1/customers/{uuid.uuid4()}/recommendations"),
        404,
        "customer_not_found",
    )
    await client.delete(f"/v1/customers/{customer['id']}")
    assert_problem(await client.get(path), 404, "customer_not_found")

    other = await create_customer(client)
    path = f"/v1/customers/{other['id']}/recommendations"
    for params in ({"limit": 0}, {"limit": 51}, {"kind": "popular"}, {"kind": "x\x00"}):
        assert_problem(await client.get(path, params=params), 422, "validation_failed")

    assert_problem(await anon.get(path), 401, "unauthorized")
    orders_only = await make_key("orders:read", "customers:read")
    assert_problem(await client.get(path, headers=bearer(orders_only)), 403, "missing_scope")
    analytics = await make_key("analytics:read")
    response = await client.get(path, headers=bearer(analytics), params={"limit": 50})
    assert response.status_code == 200, response.text


QUERY = """
query($b: ID!, $f: ID!, $kind: RequestedKind, $limit: Int!) {
  b: customer(id: $b) { recommendations(kind: $kind, limit: $limit) {
    customerId refreshedAt items { sku name category kind score reason } } }
  f: customer(id: $f) { recommendations(kind: $kind, limit: $limit) {
    customerId items { sku kind reason } } }
}
"""


async def test_graphql_customer_recommendations_through_one_statement(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    ids = await build_shop(client)
    await stats.refresh(as_of=date(2026, 6, 30), refresh_id=None)
    variables = {"b": ids["B"], "f": ids["F"], "kind": None, "limit": 10}

    with count_statements() as statements:
        body = await gql(client, QUERY, variables)
    assert "errors" not in body, body
    assert len([s for s in statements if "item_pairs" in s]) == 1
    b = body["data"]["b"]["recommendations"]
    rest = await recommendations(client, ids["B"])
    assert b["customerId"] == ids["B"]
    refreshed = datetime.fromisoformat(rest["refreshed_at"])
    assert datetime.fromisoformat(b["refreshedAt"]) == refreshed
    # GraphQL spells the kind as its enum (CROSS_SELL); everything else is the REST answer.
    assert [{**i, "kind": i["kind"].lower()} for i in b["items"]] == rest["items"]
    assert [i["sku"] for i in body["data"]["f"]["recommendations"]["items"]] == [
        "TEA",
        "CUP",
        "HONEY",
        "GIFT",
        "POT",
    ]

    upsells = await gql(client, QUERY, {**variables, "kind": "UPSELL", "limit": 1})
    assert "errors" not in upsells, upsells
    assert upsells["data"]["b"]["recommendations"]["items"] == [
        {
            "sku": "GIFT",
            "name": "Gift",
            "category": "tea",
            "kind": "UPSELL",
            "score": pytest.approx(1 / 6, rel=1e-12),
            "reason": {"category": "tea", "above_price": money("50.00")},
        }
    ]

    too_many = await gql(client, QUERY, {**variables, "limit": 51})
    assert error_codes(too_many) == ["validation_failed", "validation_failed"]

    customers_only = await make_key("customers:read")
    denied = await gql(client, QUERY, variables, headers=bearer(customers_only))
    assert error_codes(denied) == ["missing_scope", "missing_scope"]
    assert denied["data"]["b"]["recommendations"] is None
