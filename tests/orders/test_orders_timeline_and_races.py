"""Orders on the customer timeline, and concurrent creates of one (source, external_id)."""

import asyncio

import httpx2 as httpx

from tests.fixtures.factories import KeyFactory, bearer, create_customer, create_order, order_body
from tests.orders.helpers import events_of, metrics_of


async def test_orders_join_the_timeline(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    customer = await create_customer(client)
    order = await create_order(client, customer["id"], occurred_at="2026-03-04T05:06:07Z")
    await client.post(
        f"/v1/orders/{order['id']}/refunds", json={"amount": {"amount": "9.5", "currency": "CNY"}}
    )
    url = f"/v1/customers/{customer['id']}/timeline"
    response = await client.get(url, params={"kinds": "order"})
    assert response.status_code == 200, response.text
    [entry] = response.json()["data"]
    assert entry["kind"] == "order"
    assert entry["id"] == order["id"]
    assert entry["at"] == "2026-03-04T05:06:07Z"
    assert entry["data"] == {
        "status": "paid",
        "channel": "web",
        "total": "119.00",
        "refunded": "9.50",
        "currency": "CNY",
        "source": "shop",
        "external_id": order["external_id"],
    }
    # Without orders:read the kind is left out.
    customers_only = bearer(await make_key("customers:read", "interactions:read"))
    kinds = {e["kind"] for e in (await client.get(url, headers=customers_only)).json()["data"]}
    assert "order" not in kinds


async def test_concurrent_creates_of_one_pair_record_it_once(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = order_body(customer["id"])
    responses = await asyncio.gather(*(client.post("/v1/orders", json=body) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await events_of("order.created")) == 1
    metrics = await metrics_of(customer["id"])
    assert metrics is not None
    assert (metrics["order_count"], metrics["revision"]) == (1, 1)


async def test_concurrent_creates_of_one_pair_for_two_customers(
    client: httpx.AsyncClient,
) -> None:
    first, second = await create_customer(client), await create_customer(client)
    body = order_body(first["id"])
    posted = (first, second) * 5
    responses = await asyncio.gather(
        *(client.post("/v1/orders", json={**body, "customer_id": c["id"]}) for c in posted)
    )
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1
    owner = created[0].json()["customer_id"]
    for response, customer in zip(responses, posted, strict=True):
        if response.status_code == 201:
            continue
        if customer["id"] == owner:
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "external_id_conflict"
    assert len(await events_of("order.created")) == 1
    loser = second if owner == first["id"] else first
    assert await metrics_of(loser["id"]) is None
