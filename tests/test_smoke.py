from tests.conftest import customer_body


async def test_create_then_read_customer(client) -> None:
    created = await client.post("/v1/customers", json=customer_body())
    assert created.status_code == 201, created.text
    fetched = await client.get(f"/v1/customers/{created.json()['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["email"] == "wei.wang@example.com"
    assert fetched.headers["etag"] == '"v1"'
