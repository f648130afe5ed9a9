"""An interaction's order_id names an order of the same customer: anything else is a 422
``order_not_found`` on ``body.order_id``, on create, in a batch and on update."""

import httpx2 as httpx

from tests.fixtures.api import assert_problem
from tests.fixtures.factories import (
    create_customer,
    create_interaction,
    create_order,
    interaction_body,
)

MISSING = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"


async def test_order_must_be_the_customers(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    order = await create_order(client, customer["id"])
    others = await create_order(client, other["id"])
    linked = await create_interaction(client, customer["id"], order_id=order["id"])
    assert linked["order_id"] == order["id"]
    for order_id in (MISSING, others["id"]):
        response = await client.post(
            "/v1/interactions", json=interaction_body(customer["id"], order_id=order_id)
        )
        problem = assert_problem(response, 422, "order_not_found")
        assert problem["errors"] == [
            {"field": "body.order_id", "message": "no such order of this customer"}
        ]
    batch = await client.post(
        "/v1/interactions/batch",
        json={"items": [interaction_body(customer["id"], order_id=others["id"])]},
    )
    [result] = batch.json()["results"]
    assert result["error"]["code"] == "order_not_found"
    assert result["error"]["errors"][0]["field"] == "order_id"

    url = f"/v1/interactions/{linked['id']}"
    assert_problem(await client.patch(url, json={"order_id": others["id"]}), 422, "order_not_found")
    assert_problem(await client.patch(url, json={"order_id": MISSING}), 422, "order_not_found")
    second = await create_order(client, customer["id"])
    moved = await client.patch(url, json={"order_id": second["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["order_id"] == second["id"]
    cleared = await client.patch(url, json={"order_id": None})
    assert cleared.json()["order_id"] is None
