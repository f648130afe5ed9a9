import uuid

import httpx2 as httpx

from tests.fixtures.factories import KeyFactory, bearer, create_customer, customer_body


async def test_create_returns_profile_etag_and_location(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/customers", json=customer_body(email="A.B@Example.com"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "a.b@example.com"
    assert body["version"] == 1
    assert response.headers["etag"] == '"v1"'
    assert response.headers["location"] == f"/v1/customers/{body['id']}"


async def test_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    first = await create_customer(client)
    again = await client.post("/v1/customers", json=customer_body(email=first["email"]))
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


async def test_patch_delete_and_404(client: httpx.AsyncClient) -> None:
    created = await create_customer(client)
    url = f"/v1/customers/{created['id']}"
    patched = await client.patch(url, json={"city": "Beijing"})
    assert patched.status_code == 200
    assert patched.json()["city"] == "Beijing"
    assert patched.headers["etag"] == '"v2"'
    assert (await client.delete(url)).status_code == 204
    gone = await client.get(url)
    assert gone.status_code == 404
    assert gone.json()["code"] == "customer_not_found"
    assert (await client.get(f"/v1/customers/{uuid.uuid4()}")).status_code == 404


async def test_pii_redacted_without_pii_scope(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    created = await create_customer(client)
    key = await make_key("customers:read")
    response = await client.get(f"/v1/customers/{created['id']}", headers=bearer(key))
    assert response.status_code == 200
    assert response.json()["email"] is None
    assert response.json()["phone"] is None
    assert response.json()["birth_date"] is None
    assert response.json()["redacted_fields"] == ["email", "phone"]
    assert response.json()["first_name"] == "Wei"


async def test_list_filters_and_sort(client: httpx.AsyncClient) -> None:
    for i, city in enumerate(["Shanghai", "Beijing", "Shanghai"]):
        await create_customer(client, email=f"c{i}@example.com", city=city, phone=None)
    listed = (await client.get("/v1/customers", params={"city": "Shanghai"})).json()
    assert [c["email"] for c in listed["data"]] == ["c2@example.com", "c0@example.com"]
    ascending = (await client.get("/v1/customers", params={"sort": "created_at"})).json()
    assert [c["email"] for c in ascending["data"]] == [f"c{i}@example.com" for i in range(3)]
    found = (await client.get("/v1/customers", params={"q": "c1@exam"})).json()
    assert [c["email"] for c in found["data"]] == ["c1@example.com"]
