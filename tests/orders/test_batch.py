"""POST /v1/orders/batch: one result per item, in order; bad items never sink the rest; written
set-based with the lines, the metrics and the events."""

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest

from app.db.driver import DriverStatement
from app.orders import repository
from tests.fixtures.api import assert_problem, count_statements
from tests.fixtures.factories import create_customer, create_order, money, order_body
from tests.orders.helpers import FIGURES, events_of, metrics_of, recomputed

MISSING = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"


async def test_batch_records_per_item(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    stored = await create_order(client, customer["id"])
    twice = order_body(customer["id"])
    items: list[dict[str, Any]] = [
        order_body(customer["id"], occurred_at="2024-01-01T00:00:00Z"),  # created
        {"customer_id": customer["id"], "total": {"amount": "-1"}},  # invalid
        {**twice},  # created
        {**twice, "total": money("1"), "items": []},  # the same pair in this batch: existing
        {**twice, "customer_id": other["id"]},  # the same pair, another customer
        order_body(MISSING),  # no such customer
        order_body(customer["id"], total=money("1")),  # total_mismatch
        order_body(customer["id"], total=money("119", "USD")),  # currency
        {**order_body(customer["id"]), "external_id": stored["external_id"]},  # stored before
        {**order_body(other["id"]), "external_id": stored["external_id"]},  # stored, other's
        order_body(other["id"], status="cancelled"),  # created, not counted
        order_body(other["id"], source=None, external_id=None),  # created, no pair
    ]
    response = await client.post("/v1/orders/batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [
        "created",
        "error",
        "created",
        "existing",
        "error",
        "error",
        "error",
        "error",
        "existing",
        "error",
        "created",
        "created",
    ]
    assert (body["created"], body["existing"], body["errors"]) == (4, 2, 6)
    codes = [r["error"]["code"] if r["error"] else None for r in results]
    assert codes[1] == "validation_failed"
    assert {e["field"] for e in results[1]["error"]["errors"]} >= {"total.amount"}
    assert codes[4:8] == [
        "external_id_conflict",
        "customer_not_found",
        "total_mismatch",
        "currency_not_supported",
    ]
    assert codes[9] == "external_id_conflict"
    assert results[5]["error"]["errors"][0]["field"] == "customer_id"
    assert results[6]["error"]["expected_total"] == money("119.00")
    assert "request_id" not in results[1]["error"]
    assert results[3]["id"] == results[2]["id"]
    assert results[8]["id"] == stored["id"]

    fetched = (await client.get(f"/v1/orders/{results[0]['id']}")).json()
    assert fetched["external_id"] == items[0]["external_id"]
    assert [i["sku"] for i in fetched["items"]] == ["TEA-01", "CUP-02"]
    created = await events_of("order.created")
    assert len(created) == 5  # the one stored before, and the four created
    by_id = {e.data["id"]: e.data for e in created}
    assert by_id[fetched["id"]] == fetched
    for customer_id in (customer["id"], other["id"]):
        metrics = await metrics_of(customer_id)
        assert metrics is not None
        assert {n: metrics[n] for n in FIGURES} == await recomputed(customer_id)
    customer_metrics = await metrics_of(customer["id"])
    assert customer_metrics is not None
    assert customer_metrics["order_count"] == 3
    assert customer_metrics["first_order_at"].year == 2024
    other_metrics = await metrics_of(other["id"])
    assert other_metrics is not None
    assert (other_metrics["order_count"], other_metrics["gross_revenue"]) == (1, Decimal("119.00"))
    assert other_metrics["revision"] == 1  # one upsert per customer per batch


async def test_a_batch_is_a_few_statements(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers = [(await create_customer(client))["id"] for _ in range(3)]
    items = [order_body(customers[n % 3]) for n in range(60)]
    driver: list[str] = []
    for name in ("fetch", "fetchrow"):
        original = getattr(DriverStatement, name)

        def counted(self: DriverStatement, *args: Any, _run: Any = original, **kw: Any) -> Any:
            driver.append(self.sql)
            return _run(self, *args, **kw)

        monkeypatch.setattr(DriverStatement, name, counted)
    with count_statements() as statements:
        response = await client.post("/v1/orders/batch", json={"items": items})
    assert response.json()["created"] == 60
    # Live customers, then the orders with their lines, metrics and events; whatever the number of
    # items (a look-up of stored pairs only when some item was not written).
    assert len(driver) == 2, driver
    assert len(statements) < 6, statements
    assert len(await events_of("order.created")) == 60


async def test_hostile_items_are_item_errors(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    deep: object = 1
    for _ in range(40):
        deep = {"a": deep}
    line = {"sku": "A", "quantity": 1, "unit_price": money("1")}
    items = [
        order_body(customer["id"], external_id="a\x00b"),
        order_body(customer["id"], items=[{**line, "sku": "x\ud800"}], total=money("1")),
        order_body(customer["id"], items=[{**line, "quantity": 10**40}], total=money("1")),
        order_body(customer["id"], attributes=deep),
        order_body(customer["id"], total={"amount": 1e300, "currency": "CNY"}),
        order_body(customer["id"], items=[line] * 501, total=money("501")),
        {**order_body(customer["id"]), "customer_id": "not-a-uuid"},
        order_body(customer["id"]),
    ]
    content = json.dumps({"items": items}, ensure_ascii=True)  # lone surrogates as escapes
    response = await client.post(
        "/v1/orders/batch", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["error"] * 7 + ["created"]


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    minimal = {"customer_id": customer["id"], "total": money("1")}
    too_many = {"items": [minimal] * 1001}
    assert_problem(await client.post("/v1/orders/batch", json=too_many), 422, "validation_failed")
    assert_problem(
        await client.post("/v1/orders/batch", json={"items": []}), 422, "validation_failed"
    )
    big = {"items": [order_body(customer["id"], attributes={"note": "x" * 1000})] * 1000}
    assert (await client.post("/v1/orders/batch", json=big)).status_code == 413
    assert await events_of("order.created") == []


async def test_concurrent_batches_over_the_same_customers_never_deadlock(
    client: httpx.AsyncClient,
) -> None:
    """Batches naming the same customers, and the same (source, external_id) pairs, in opposite
    orders all succeed: orders are inserted in pair order, metrics and events in customer order."""
    customers = [(await create_customer(client))["id"] for _ in range(6)]
    shared = [order_body(customers[n % 6], items=[], total=money("1")) for n in range(120)]

    def batch(order: list[str], reverse: bool) -> dict[str, object]:
        items = [order_body(cid) for _ in range(3) for cid in order]
        items += shared[::-1] if reverse else shared
        return {"items": items}

    bodies = [batch(customers[::-1] if n % 2 else customers, bool(n % 2)) for n in range(6)]
    responses = await asyncio.gather(*(client.post("/v1/orders/batch", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [200] * len(bodies), [
        r.text[:300] for r in responses if r.status_code != 200
    ]
    assert [r.json()["errors"] for r in responses] == [0] * 6
    assert sum(r.json()["created"] for r in responses) == 6 * 18 + 120
    for customer_id in customers:
        sequences = [e.sequence for e in await events_of("order.created", customer_id)]
        # after the customer's own customer.created (1): no gap, no repeat
        assert sorted(sequences) == list(range(2, len(sequences) + 2))
        assert len(sequences) == 38
        metrics = await metrics_of(customer_id)
        assert metrics is not None
        assert {n: metrics[n] for n in FIGURES} == await recomputed(customer_id)
        assert metrics["order_count"] == 38


async def test_orders_are_inserted_in_pair_order(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The (source, external_id) index entries are the first locks a batch takes: in one global
    order, so two batches sending the same pairs in opposite orders cannot wait on each other."""
    customer = (await create_customer(client))["id"]
    seen: list[list[tuple[str | None, str | None]]] = []
    original = repository.insert_batch

    async def spy(conn: Any, documents: Any, *args: Any) -> Any:
        seen.append([(d["source"], d["external_id"]) for d in documents])
        return await original(conn, documents, *args)

    monkeypatch.setattr(repository, "insert_batch", spy)
    items = [order_body(customer, source=s, external_id=e) for s, e in [("b", "2"), ("a", "9")]]
    items += [
        order_body(customer, source=None, external_id=None),
        order_body(customer, source="a", external_id="10"),
    ]
    response = await client.post("/v1/orders/batch", json={"items": items})
    assert response.json()["created"] == 4
    assert seen == [[("a", "10"), ("a", "9"), ("b", "2"), (None, None)]]
