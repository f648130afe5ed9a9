import httpx2 as httpx

from tests.fixtures.factories import customer_body


async def test_create_then_read_customer(client: httpx.AsyncClient) -> None:
    body = customer_body()
    created = await client.post("/v1/customers", json=body)
    assert created.status_code == 201, created.text
    fetched = await client.get(f"/v1/customers/{created.json()['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["email"] == body["email"]
    assert fetched.headers["etag"] == '"v1"'
