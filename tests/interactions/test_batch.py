"""POST /v1/interactions/batch: one result per item, in order; bad items never sink the rest."""

import json

import httpx2 as httpx

from tests.fixtures.api import assert_problem
from tests.fixtures.factories import create_customer, create_interaction, interaction_body
from tests.interactions.helpers import events_of, store_case

MISSING = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"


async def test_batch_logs_per_item(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    stored = await create_interaction(client, customer["id"])
    twice = interaction_body(customer["id"])
    other_case = await store_case(other["id"])
    items = [
        interaction_body(customer["id"]),  # created
        {"customer_id": customer["id"], "channel": "fax", "kind": "call"},  # invalid
        {**twice},  # created
        {**twice, "subject": "again"},  # the same pair in this batch: existing
        {**twice, "customer_id": other["id"]},  # the same pair, another customer
        interaction_body(MISSING),  # no such customer
        interaction_body(customer["id"], case_id=other_case),  # another customer's case
        {
            "customer_id": customer["id"],
            "channel": "phone",
            "direction": "inbound",
            "kind": "call",
            "source": stored["source"],
            "external_id": stored["external_id"],
        },  # logged before
    ]
    response = await client.post("/v1/interactions/batch", json={"items": items})
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
        "existing",
    ]
    assert (body["created"], body["existing"], body["errors"]) == (2, 2, 4)
    codes = [r["error"]["code"] if r["error"] else None for r in results]
    assert codes[1] == "validation_failed"
    assert {e["field"] for e in results[1]["error"]["errors"]} == {"channel", "direction"}
    assert codes[4:7] == ["external_id_conflict", "customer_not_found", "case_not_found"]
    assert results[5]["error"]["errors"][0]["field"] == "customer_id"
    assert results[3]["id"] == results[2]["id"]
    assert results[7]["id"] == stored["id"]
    assert "request_id" not in results[1]["error"]
    logged = await events_of("interaction.logged")
    assert len(logged) == 3  # the one stored before, and the two created
    fetched = await client.get(f"/v1/interactions/{results[0]['id']}")
    assert fetched.json()["external_id"] == items[0]["external_id"]


async def test_hostile_items_are_item_errors(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    deep: object = 1
    for _ in range(40):
        deep = {"a": deep}
    items = [
        interaction_body(customer["id"], subject="a\x00b"),
        interaction_body(customer["id"], body="x\ud800"),
        interaction_body(customer["id"], duration_seconds=10**40),
        interaction_body(customer["id"], attributes=deep),
        interaction_body(customer["id"], attributes={"n": 2**60}),
        interaction_body(customer["id"]),
    ]
    content = json.dumps({"items": items}, ensure_ascii=True)  # lone surrogates as escapes
    response = await client.post(
        "/v1/interactions/batch", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["error"] * 5 + ["created"]


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    too_many = {"items": [interaction_body(customer["id"]) for _ in range(1001)]}
    assert_problem(
        await client.post("/v1/interactions/batch", json=too_many), 422, "validation_failed"
    )
    assert_problem(
        await client.post("/v1/interactions/batch", json={"items": []}), 422, "validation_failed"
    )
    assert await events_of("interaction.logged") == []


async def test_concurrent_batches_over_the_same_customers_never_deadlock(
    client: httpx.AsyncClient,
) -> None:
    """Each item's event locks its customer's sequence row: batches naming the same customers in
    opposite orders must still all succeed (they are written in customer order)."""
    import asyncio

    customers = [(await create_customer(client))["id"] for _ in range(6)]

    def batch(order: list[str]) -> dict[str, object]:
        return {"items": [interaction_body(cid) for _ in range(3) for cid in order]}

    bodies = [batch(customers if n % 2 else customers[::-1]) for n in range(6)]
    responses = await asyncio.gather(
        *(client.post("/v1/interactions/batch", json=body) for body in bodies)
    )
    assert [r.status_code for r in responses] == [200] * len(bodies), [
        r.text[:200] for r in responses if r.status_code != 200
    ]
    assert [r.json()["created"] for r in responses] == [18] * 6
    for customer_id in customers:
        sequences = [e.sequence for e in await events_of("interaction.logged", customer_id)]
        # after the customer's own customer.created (1): no gap, no repeat
        assert sorted(sequences) == list(range(2, len(sequences) + 2))
        assert len(sequences) == 18
