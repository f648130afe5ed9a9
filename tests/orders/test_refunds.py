"""POST/GET /v1/orders/{id}/refunds: by amount and by lines, never more than paid, idempotent by
external_id, with the order, the metrics and the event kept in step."""

import asyncio
from decimal import Decimal
from typing import Any

import httpx2 as httpx

from tests.fixtures.api import assert_problem
from tests.fixtures.factories import create_customer, create_order, money
from tests.orders.helpers import FIGURES, events_of, metrics_of, recomputed

MISSING = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"


async def _figures_match(customer_id: str) -> None:
    metrics = await metrics_of(customer_id)
    assert metrics is not None
    assert {name: metrics[name] for name in FIGURES} == await recomputed(customer_id)


async def test_refund_by_amount(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    order = await create_order(client, customer["id"])
    url = f"/v1/orders/{order['id']}/refunds"
    response = await client.post(url, json={"amount": money("19.5"), "reason": "Late"})
    assert response.status_code == 201, response.text
    refund = response.json()
    assert response.headers["location"] == f"{url}/{refund['id']}"
    assert refund["amount"] == money("19.50")
    assert (refund["order_id"], refund["customer_id"]) == (order["id"], customer["id"])
    assert refund["items"] is None
    assert (await client.get(response.headers["location"])).json() == refund
    fetched = await client.get(f"/v1/orders/{order['id']}")
    assert fetched.headers["etag"] == '"v2"'
    after = fetched.json()
    assert after["refunded"] == money("19.50")
    assert after["refund_state"] == "partial"
    assert after["version"] == 2
    [event] = await events_of("order.refunded", customer["id"])
    assert event.data == {**after, "refund": refund}
    metrics = await metrics_of(customer["id"])
    assert metrics is not None
    assert (metrics["refunded_amount"], metrics["net_revenue"]) == (
        Decimal("19.50"),
        Decimal("99.50"),
    )
    assert (metrics["refund_count"], metrics["revision"]) == (1, 2)
    assert metrics["average_order_value"] == Decimal("99.50")
    await _figures_match(customer["id"])

    over = await client.post(url, json={"amount": money("99.51")})
    problem = assert_problem(over, 409, "refund_exceeds_remaining")
    assert problem["remaining"] == money("99.50")
    rest = await client.post(url, json={"amount": money("99.50")})
    assert rest.status_code == 201, rest.text
    done = (await client.get(f"/v1/orders/{order['id']}")).json()
    assert (done["refunded"], done["refund_state"]) == (money("119.00"), "full")
    problem = assert_problem(
        await client.post(url, json={"amount": money("0.01")}), 409, "refund_exceeds_remaining"
    )
    assert problem["remaining"] == money("0.00")
    listed = await client.get(url)
    assert [r["amount"]["amount"] for r in listed.json()["data"]] == ["19.50", "99.50"]
    await _figures_match(customer["id"])


async def test_refund_by_lines(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    # 2 × 49.50 + 1 × 20.00 = 119.00, less 11.90 (10 %) + 5.00 shipping = 112.10
    order = await create_order(
        client, customer["id"], discount=money("11.90"), shipping=money("5"), total=money("112.10")
    )
    url = f"/v1/orders/{order['id']}/refunds"
    first = await client.post(url, json={"items": [{"line": 1, "quantity": 1}]})
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == money("44.55")  # 49.50 less 10 %
    assert first.json()["items"] == [{"line": 1, "quantity": 1}]
    after = (await client.get(f"/v1/orders/{order['id']}")).json()
    assert [i["refunded_quantity"] for i in after["items"]] == [1, 0]
    too_many = await client.post(
        url, json={"items": [{"line": 2, "quantity": 1}, {"line": 1, "quantity": 2}]}
    )
    problem = assert_problem(too_many, 409, "refund_exceeds_remaining")
    assert problem["errors"] == [
        {"field": "body.items.1.quantity", "message": "only 1 left to refund"}
    ]
    unknown = await client.post(url, json={"items": [{"line": 3, "quantity": 1}]})
    problem = assert_problem(unknown, 422, "line_not_found")
    assert problem["errors"][0]["field"] == "body.items.0.line"
    twice = await client.post(url, json={"items": [{"line": 1, "quantity": 1}] * 2})
    assert_problem(twice, 422, "validation_failed")
    # An amount refund first leaves less than the last lines are worth: capped at what is left.
    assert (await client.post(url, json={"amount": money("60")})).status_code == 201
    last = await client.post(
        url, json={"items": [{"line": 1, "quantity": 1}, {"line": 2, "quantity": 1}]}
    )
    assert last.status_code == 201, last.text
    assert last.json()["amount"] == money("7.55")  # 112.10 - 44.55 - 60
    done = (await client.get(f"/v1/orders/{order['id']}")).json()
    assert done["refund_state"] == "full"
    assert [i["refunded_quantity"] for i in done["items"]] == [2, 1]
    await _figures_match(customer["id"])


async def test_refund_rules(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    order = await create_order(client, customer["id"])
    url = f"/v1/orders/{order['id']}/refunds"
    invalid: list[dict[str, Any]] = [
        {},
        {"amount": money("1"), "items": [{"line": 1, "quantity": 1}]},
        {"amount": money("0")},
        {"items": []},
        {"items": [{"line": 0, "quantity": 1}]},
        {"items": [{"line": 1, "quantity": 0}]},
        {"amount": money("1"), "occurred_at": "2999-01-01T00:00:00Z"},
        {"amount": money("1"), "reason": "a\u0000b"},
    ]
    for body in invalid:
        assert_problem(await client.post(url, json=body), 422, "validation_failed")
    problem = assert_problem(
        await client.post(url, json={"amount": money("1", "USD")}), 422, "currency_not_supported"
    )
    assert problem["errors"][0]["field"] == "body.amount.currency"
    assert_problem(
        await client.post(f"/v1/orders/{MISSING}/refunds", json={"amount": money("1")}),
        404,
        "order_not_found",
    )
    assert_problem(await client.get(f"/v1/orders/{MISSING}/refunds"), 404, "order_not_found")
    assert_problem(await client.get(f"{url}/{MISSING}"), 404, "refund_not_found")
    cancelled = await create_order(client, customer["id"], status="cancelled")
    assert_problem(
        await client.post(f"/v1/orders/{cancelled['id']}/refunds", json={"amount": money("1")}),
        409,
        "order_cancelled",
    )
    free = await create_order(
        client,
        customer["id"],
        items=[{"sku": "GIFT", "quantity": 1, "unit_price": money("0")}],
        total=money("0"),
    )
    assert_problem(
        await client.post(
            f"/v1/orders/{free['id']}/refunds", json={"items": [{"line": 1, "quantity": 1}]}
        ),
        409,
        "refund_exceeds_remaining",
    )
    assert await events_of("order.refunded") == []


async def test_refund_is_idempotent_by_external_id(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    order = await create_order(client, customer["id"])
    url = f"/v1/orders/{order['id']}/refunds"
    body = {"amount": money("10"), "external_id": "R-1", "reason": "Dent"}
    first = await client.post(url, json=body)
    again = await client.post(url, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert_problem(
        await client.post(url, json={**body, "amount": money("11")}), 409, "external_id_conflict"
    )
    assert len(await events_of("order.refunded")) == 1
    other = await create_order(client, customer["id"])
    # The same external_id on another order is another refund.
    assert (await client.post(f"/v1/orders/{other['id']}/refunds", json=body)).status_code == 201
    metrics = await metrics_of(customer["id"])
    assert metrics is not None
    assert (metrics["refund_count"], metrics["refunded_amount"]) == (2, Decimal("20.00"))


async def test_concurrent_refunds_never_exceed_the_total(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    order = await create_order(client, customer["id"], items=[], total=money("100"))
    url = f"/v1/orders/{order['id']}/refunds"
    responses = await asyncio.gather(
        *(client.post(url, json={"amount": money("30")}) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 7, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "refund_exceeds_remaining"
    after = (await client.get(f"/v1/orders/{order['id']}")).json()
    assert after["refunded"] == money("90.00")
    assert after["version"] == 4
    assert len(await events_of("order.refunded")) == 3
    await _figures_match(customer["id"])
