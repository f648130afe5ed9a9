import httpx2 as httpx

from tests.fixtures.factories import create_customer


async def test_batch_upserts_per_item(client: httpx.AsyncClient) -> None:
    existing = await create_customer(client, external_id="ext-1")
    items = [
        {"external_id": "ext-1", "city": "Hangzhou"},  # update by external_id
        {"email": "new@example.com", "first_name": "New"},  # create
        {"email": "not-an-email"},  # invalid
        {"external_id": "ext-1", "city": "Hangzhou"},  # unchanged now
    ]
    response = await client.post("/v1/customers/batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["updated", "created", "error", "unchanged"]
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (1, 1, 1, 1)
    assert body["results"][0]["id"] == existing["id"]
    assert body["results"][2]["error"]["code"] == "validation_failed"
    fetched = (await client.get(f"/v1/customers/{existing['id']}")).json()
    assert fetched["city"] == "Hangzhou"
    assert fetched["version"] == 2
    listed = (await client.get("/v1/customers")).json()
    assert len(listed["data"]) == 2


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    too_many = {"items": [{"first_name": f"n{i}"} for i in range(1001)]}
    assert (await client.post("/v1/customers/batch", json=too_many)).status_code == 422
    assert (await client.post("/v1/customers/batch", json={"items": []})).status_code == 422
