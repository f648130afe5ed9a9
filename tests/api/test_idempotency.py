"""Idempotency-Key beyond the basics in test_conventions: canonical bodies and GraphQL mutations."""

import json

import httpx2 as httpx

from tests.fixtures.api import gql
from tests.fixtures.factories import customer_body

CREATE = """mutation($input: CustomerCreateInput!, $key: String) {
  createCustomer(input: $input, idempotencyKey: $key) { customer { customerId email } replayed }
}"""


async def _count_customers(client: httpx.AsyncClient) -> int:
    return len((await client.get("/v1/customers", params={"limit": 100})).json()["data"])


async def test_same_json_with_other_spacing_and_key_order_replays(
    client: httpx.AsyncClient,
) -> None:
    body = customer_body()
    first = await client.post(
        "/v1/customers",
        content=json.dumps(body),
        headers={"Idempotency-Key": "canon-1", "Content-Type": "application/json"},
    )
    assert first.status_code == 201, first.text
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)
    again = await client.post(
        "/v1/customers",
        content=reordered,
        headers={"Idempotency-Key": "canon-1", "Content-Type": "application/json"},
    )
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert await _count_customers(client) == 1


async def test_graphql_create_with_idempotency_key_runs_once(client: httpx.AsyncClient) -> None:
    variables = {"input": {"firstName": "Idem", "email": "idem@example.com"}, "key": "gql-1"}
    first = await gql(client, CREATE, variables)
    assert "errors" not in first, first
    created = first["data"]["createCustomer"]
    assert created["replayed"] is False
    again = await gql(client, CREATE, variables)
    assert "errors" not in again, again
    assert again["data"]["createCustomer"]["replayed"] is True
    assert again["data"]["createCustomer"]["customer"] == created["customer"]
    assert await _count_customers(client) == 1
    # Same key, other input: refused, nothing written.
    other = await gql(client, CREATE, {**variables, "input": {"firstName": "Other"}})
    assert other["errors"][0]["extensions"]["code"] == "idempotency_key_reused"
    assert await _count_customers(client) == 1
    # Without a key, a second create is a second customer.
    plain = await gql(client, CREATE, {"input": {"firstName": "Idem"}})
    assert plain["data"]["createCustomer"]["replayed"] is False
    assert await _count_customers(client) == 2


async def test_graphql_and_rest_share_the_key_space(client: httpx.AsyncClient) -> None:
    rest = await client.post(
        "/v1/customers", json=customer_body(), headers={"Idempotency-Key": "shared-1"}
    )
    assert rest.status_code == 201
    body = await gql(client, CREATE, {"input": {"firstName": "Wei"}, "key": "shared-1"})
    assert body["errors"][0]["extensions"]["code"] == "idempotency_key_reused"


async def test_graphql_invalid_idempotency_key(client: httpx.AsyncClient) -> None:
    body = await gql(client, CREATE, {"input": {"firstName": "A"}, "key": "k" * 256})
    assert body["errors"][0]["extensions"]["code"] == "invalid_idempotency_key"
    assert await _count_customers(client) == 0
