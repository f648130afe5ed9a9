"""POST/GET /v1/orders: the create with its lines, totals, currency, idempotency, the list."""

from decimal import Decimal

import httpx2 as httpx

from tests.fixtures.api import assert_problem
from tests.fixtures.factories import (
    KeyFactory,
    bearer,
    create_customer,
    create_order,
    money,
    order_body,
)
from tests.orders.helpers import events_of, metrics_of, recomputed

MISSING = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"


async def test_create_and_read(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = order_body(
        customer["id"],
        discount=money("10.5"),
        shipping=money("8"),
        total=money("116.50"),
        attributes={"coupon": "W10"},
    )
    response = await client.post("/v1/orders", json=body)
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/v1/orders/{order['id']}"
    assert response.headers["etag"] == '"v1"'
    assert order["subtotal"] == money("119.00")
    assert order["discount"] == money("10.50")
    assert order["shipping"] == money("8.00")
    assert order["tax"] == money("0.00")
    assert order["total"] == money("116.50")
    assert order["refunded"] == money("0.00")
    assert order["refund_state"] == "none"
    assert [
        (i["line"], i["sku"], i["quantity"], i["refunded_quantity"]) for i in order["items"]
    ] == [
        (1, "TEA-01", 2, 0),
        (2, "CUP-02", 1, 0),
    ]
    assert order["items"][0]["unit_price"] == money("49.50")
    fetched = await client.get(f"/v1/orders/{order['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == order
    assert fetched.headers["etag"] == '"v1"'
    [event] = await events_of("order.created", customer["id"])
    assert event.data == order
    metrics = await metrics_of(customer["id"])
    assert metrics is not None
    assert metrics["order_count"] == 1
    assert metrics["gross_revenue"] == Decimal("116.50")
    assert metrics["net_revenue"] == Decimal("116.50")
    assert metrics["average_order_value"] == Decimal("116.50")
    assert metrics["revision"] == 1


async def test_without_lines_the_subtotal_comes_from_the_total(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    order = await create_order(
        client,
        customer["id"],
        items=[],
        total=money("100"),
        discount=money("5"),
        shipping=money("10"),
        tax=money("3"),
    )
    assert order["subtotal"] == money("92.00")
    assert order["items"] == []
    # Defaults: status paid, channel other, occurred_at now.
    minimal = await client.post(
        "/v1/orders", json={"customer_id": customer["id"], "total": money("1")}
    )
    assert minimal.status_code == 201, minimal.text
    assert (minimal.json()["status"], minimal.json()["channel"]) == ("paid", "other")
    negative = order_body(customer["id"], items=[], total=money("1"), shipping=money("2"))
    assert_problem(await client.post("/v1/orders", json=negative), 422, "total_mismatch")


async def test_total_and_currency_checks(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    wrong = await client.post("/v1/orders", json=order_body(customer["id"], total=money("118.99")))
    problem = assert_problem(wrong, 422, "total_mismatch")
    assert problem["expected_total"] == money("119.00")
    assert problem["errors"] == [{"field": "body.total.amount", "message": "must be 119.00"}]
    body = order_body(customer["id"])
    body["items"][1]["unit_price"] = money("20.00", "USD")
    problem = assert_problem(
        await client.post("/v1/orders", json=body), 422, "currency_not_supported"
    )
    assert problem["errors"][0]["field"] == "body.items.1.unit_price.currency"
    problem = assert_problem(
        await client.post("/v1/orders", json=order_body(customer["id"], tax=money("0", "EUR"))),
        422,
        "currency_not_supported",
    )
    assert problem["errors"][0]["field"] == "body.tax.currency"
    for amount in ("1.005", "-1", "1e3", "NaN", "1000000000000", " ", "１"):
        response = await client.post(
            "/v1/orders", json=order_body(customer["id"], items=[], total=money(amount))
        )
        assert_problem(response, 422, "validation_failed")
    for total in (119, 119.0, {"amount": "119.00"}, {"amount": "1", "currency": "CNY", "x": 1}):
        response = await client.post(
            "/v1/orders", json=order_body(customer["id"], items=[], total=total)
        )
        assert_problem(response, 422, "validation_failed")
    # Lines whose sum cannot be stored.
    huge = [{"sku": "GOLD", "quantity": 1_000_000, "unit_price": money("999999999999.99")}]
    response = await client.post(
        "/v1/orders", json=order_body(customer["id"], items=huge, total=money("1"))
    )
    assert response.status_code == 422, response.text
    assert await events_of("order.created") == []
    assert await metrics_of(customer["id"]) is None


async def test_unknown_or_deleted_customer(client: httpx.AsyncClient) -> None:
    problem = assert_problem(
        await client.post("/v1/orders", json=order_body(MISSING)), 422, "customer_not_found"
    )
    assert problem["errors"] == [{"field": "body.customer_id", "message": "no such customer"}]
    customer = await create_customer(client)
    assert (await client.delete(f"/v1/customers/{customer['id']}")).status_code == 204
    assert_problem(
        await client.post("/v1/orders", json=order_body(customer["id"])), 422, "customer_not_found"
    )


async def test_same_external_id_is_the_same_order(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    body = order_body(customer["id"])
    first = await client.post("/v1/orders", json=body)
    again = await client.post("/v1/orders", json={**body, "total": money("5"), "items": []})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    conflict = await client.post("/v1/orders", json={**body, "customer_id": other["id"]})
    assert_problem(conflict, 409, "external_id_conflict")
    assert len(await events_of("order.created")) == 1
    assert (await metrics_of(customer["id"]) or {})["order_count"] == 1
    assert await metrics_of(other["id"]) is None
    missing_source = order_body(customer["id"], source=None)
    assert_problem(await client.post("/v1/orders", json=missing_source), 422, "validation_failed")


async def test_cancelled_orders_are_stored_but_never_counted(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    cancelled = await create_order(client, customer["id"], status="cancelled")
    assert cancelled["status"] == "cancelled"
    assert len(await events_of("order.created", customer["id"])) == 1
    assert await metrics_of(customer["id"]) is None
    await create_order(client, customer["id"], occurred_at="2026-01-02T00:00:00Z")
    await create_order(client, customer["id"], status="pending", occurred_at="2025-05-05T05:05:05Z")
    await create_order(
        client, customer["id"], status="cancelled", occurred_at="2020-01-01T00:00:00Z"
    )
    metrics = await metrics_of(customer["id"])
    assert metrics is not None
    assert metrics["order_count"] == 2
    assert metrics["gross_revenue"] == Decimal("238.00")
    assert metrics["first_order_at"].isoformat() == "2025-05-05T05:05:05+00:00"
    assert metrics["last_order_at"].isoformat() == "2026-01-02T00:00:00+00:00"
    assert metrics["revision"] == 2
    assert {k: metrics[k] for k in await recomputed(customer["id"])} == await recomputed(
        customer["id"]
    )


async def test_list_filters_and_paging(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    a = await create_order(client, customer["id"], occurred_at="2026-01-01T00:00:00Z")
    b = await create_order(
        client,
        customer["id"],
        occurred_at="2026-02-01T00:00:00Z",
        channel="store",
        items=[{"sku": "RARE", "quantity": 1, "unit_price": money("3")}],
        total=money("3"),
    )
    c = await create_order(client, other["id"], occurred_at="2026-03-01T00:00:00Z")
    listed = await client.get("/v1/orders", params={"customer_id": customer["id"]})
    assert [o["id"] for o in listed.json()["data"]] == [b["id"], a["id"]]
    assert listed.json()["data"][0] == b
    page = await client.get("/v1/orders", params={"limit": 1, "sort": "occurred_at"})
    assert [o["id"] for o in page.json()["data"]] == [a["id"]]
    rest = await client.get(
        "/v1/orders",
        params={"limit": 5, "sort": "occurred_at", "cursor": page.json()["next_cursor"]},
    )
    assert [o["id"] for o in rest.json()["data"]] == [b["id"], c["id"]]
    by_sku = await client.get("/v1/orders", params={"sku": "RARE"})
    assert [o["id"] for o in by_sku.json()["data"]] == [b["id"]]
    by_channel = await client.get("/v1/orders", params={"channel": "store"})
    assert [o["id"] for o in by_channel.json()["data"]] == [b["id"]]
    window = await client.get(
        "/v1/orders",
        params={
            "occurred_after": "2026-01-15T00:00:00Z",
            "occurred_before": "2026-03-01T00:00:00Z",
        },
    )
    assert [o["id"] for o in window.json()["data"]] == [b["id"]]
    by_pair = await client.get(
        "/v1/orders", params={"source": "shop", "external_id": c["external_id"]}
    )
    assert [o["id"] for o in by_pair.json()["data"]] == [c["id"]]
    tampered = await client.get("/v1/orders", params={"cursor": page.json()["next_cursor"] + "x"})
    assert tampered.status_code == 400
    assert_problem(
        await client.get("/v1/orders/01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"), 404, "order_not_found"
    )


async def test_scopes(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    factory = make_key
    customer = await create_customer(client)
    order = await create_order(client, customer["id"])
    reader = bearer(await factory("orders:read"))
    writer = bearer(await factory("orders:write"))
    other = bearer(await factory("customers:read"))
    assert (await client.get(f"/v1/orders/{order['id']}", headers=reader)).status_code == 200
    assert (await client.get("/v1/orders", headers=writer)).status_code == 200
    assert_problem(
        await client.get(f"/v1/orders/{order['id']}", headers=other), 403, "missing_scope"
    )
    assert_problem(
        await client.post("/v1/orders", json=order_body(customer["id"]), headers=reader),
        403,
        "missing_scope",
    )
    refund = {"amount": money("1")}
    assert_problem(
        await client.post(f"/v1/orders/{order['id']}/refunds", json=refund, headers=reader),
        403,
        "missing_scope",
    )
    assert (
        await client.post(f"/v1/orders/{order['id']}/refunds", json=refund, headers=writer)
    ).status_code == 201
    assert (
        await client.get(f"/v1/orders/{order['id']}/refunds", headers=reader)
    ).status_code == 200
    assert_problem(
        await client.post(
            "/v1/orders/batch", json={"items": [order_body(customer["id"])]}, headers=reader
        ),
        403,
        "missing_scope",
    )


async def test_hostile_input_is_a_4xx(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    line = {"sku": "A", "quantity": 1, "unit_price": money("1")}
    deep: object = 1
    for _ in range(40):
        deep = {"a": deep}
    bodies = [
        order_body(customer["id"], items=[{**line, "sku": "a\x00"}], total=money("1")),
        order_body(customer["id"], items=[{**line, "quantity": 10**40}], total=money("1")),
        order_body(customer["id"], items=[{**line, "quantity": 0}], total=money("0")),
        order_body(customer["id"], attributes=deep),
        order_body(customer["id"], total={"amount": "9" * 400, "currency": "CNY"}),
        order_body(customer["id"], occurred_at="9999-12-31T23:59:59+14:00"),
        order_body(customer["id"], occurred_at="2999-01-01T00:00:00Z"),
        order_body(customer["id"], status="refunded"),
    ]
    for body in bodies:
        response = await client.post("/v1/orders", json=body)
        assert_problem(response, 422, "validation_failed")
    surrogate = (
        '{"customer_id": "'
        + customer["id"]
        + '", "total": {"amount": "1", "currency": "C\\ud800"}}'
    )
    response = await client.post(
        "/v1/orders", content=surrogate, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert await events_of("order.created") == []


def test_the_batch_document_is_the_orders_snapshot() -> None:
    """A batch writes each order from its event data built straight from the body
    (``order_document``); it must be exactly what the single create records (``snapshot`` of the
    ``OrderOut``)."""
    import uuid

    from app.core import clock
    from app.orders import service
    from app.orders.schemas import OrderCreate

    bodies = [
        order_body(str(uuid.uuid4()), discount=money("1.5"), tax=money("2"), total=money("119.50")),
        order_body(
            str(uuid.uuid4()),
            items=[],
            total=money("7"),
            status="cancelled",
            source=None,
            external_id=None,
            attributes={"a": [1, "x"]},
            occurred_at="2026-01-02T03:04:05+08:00",
        ),
        {
            **order_body(str(uuid.uuid4())),
            "items": [{"sku": "X", "quantity": 3, "unit_price": money("0.1")}],
            "total": money("0.3"),
            "occurred_at": "2025-06-30T23:59:59.5Z",
        },
    ]
    for body in bodies:
        payload = OrderCreate.model_validate(body)
        values, _, order = service.new_order(payload, clock.now())
        document = service.order_document(payload, values["id"], values["created_at"])
        assert document == service.snapshot(order)


async def test_a_batch_orders_event_is_the_stored_order(client: httpx.AsyncClient) -> None:
    """What the batch's statement stores (the order, its lines) and what its event says are the
    same order: the event data equals the order read back."""
    customer = await create_customer(client)
    items = [
        order_body(customer["id"], external_id="doc-1", occurred_at="2024-02-29T12:00:00.123Z"),
        order_body(
            customer["id"],
            source=None,
            external_id=None,
            items=[],
            total=money("5"),
            attributes={"k": "v"},
        ),
    ]
    response = await client.post("/v1/orders/batch", json={"items": items})
    assert response.json()["created"] == 2, response.text
    created = await events_of("order.created")
    assert len(created) == 2
    for event in created:
        stored = (await client.get(f"/v1/orders/{event.data['id']}")).json()
        assert event.data == stored
