import uuid
from typing import Any

import httpx2 as httpx

from app.customers.schemas import CUSTOMER_PII
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


async def _examples(client: httpx.AsyncClient, component: str) -> list[dict[str, Any]]:
    """The examples of a component as the OpenAPI document shows them."""
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    examples: list[dict[str, Any]] = schemas[component]["examples"]
    return examples


def _without(value: Any, keys: set[str]) -> Any:
    """``value`` without these keys at any depth: what differs from one call to the next."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


# What differs from one call to the next (title: Python's phrase for the status).
VOLATILE = {"id", "created_at", "updated_at", "title"}


async def test_the_documented_customer_examples_answer_as_documented(
    client: httpx.AsyncClient,
) -> None:
    """The request examples of the OpenAPI document, sent for real, get the documented answers."""
    full, minimal = await _examples(client, "CustomerCreate")
    created = await client.post("/v1/customers", json=full)
    assert created.status_code == 201, created.text
    stored, redacted = await _examples(client, "CustomerOut")
    assert _without(created.json(), VOLATILE) == _without(stored, VOLATILE)
    assert set(redacted["redacted_fields"]) <= CUSTOMER_PII
    assert (await client.post("/v1/customers", json=minimal)).status_code == 201

    url = f"/v1/customers/{created.json()['id']}"
    for change in await _examples(client, "CustomerUpdate"):
        response = await client.patch(url, json=change)
        assert response.status_code == 200, response.text
        assert response.json()["version"] > 1
    final = response.json()
    assert (final["city"], final["notes"]) == ("Hangzhou", None)  # null cleared the notes
    assert final["attributes"] == {"shoe_size": 42, "loyalty_level": "gold"}  # and removed "vip"


async def test_the_documented_batch_example_answers_as_documented(
    client: httpx.AsyncClient,
) -> None:
    [request] = await _examples(client, "CustomerBatch")
    [expected] = await _examples(client, "CustomerBatchResult")
    batch = await client.post("/v1/customers/batch", json=request)
    assert batch.status_code == 200, batch.text
    assert _without(batch.json(), VOLATILE) == _without(expected, VOLATILE)
