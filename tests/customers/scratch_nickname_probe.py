"""Run ONLY inside the scratch copy that ``test_one_declaration.py`` builds: there ``CustomerFields``
has a PII field ``nickname``, ``models.py`` its column and ``migrations/`` its migration, and nothing
else was edited. These tests check the field reached every surface that derives from the schema.

Not collected by the normal run (the name is not ``test_*.py``); in the real tree it fails, as
there is no ``nickname``. Everything here goes through the public surfaces (HTTP, GraphQL, the
feed), so a second, hand-written list of customer fields anywhere in app/ makes one of them fail.
"""

from pathlib import Path
from typing import Any

import httpx2 as httpx
from graphql import GraphQLInputObjectType, GraphQLObjectType
from graphql import build_schema as parse_sdl

import app
from app.contracts import graphql_sdl
from tests.fixtures.api import gql
from tests.fixtures.events import wait_stamped
from tests.fixtures.factories import KeyFactory, bearer, customer_body, customer_input

FIELD = "nickname"


def test_this_is_the_scratch_copy() -> None:
    from app.customers.schemas import CustomerFields

    assert Path(app.__file__).resolve().is_relative_to(Path.cwd().resolve())
    assert FIELD in CustomerFields.model_fields


async def test_rest_contract(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("CustomerCreate", "CustomerUpdate", "CustomerOut"):
        prop = schemas[name]["properties"][FIELD]
        assert prop["x-pii"] is True, name
        assert prop["description"].startswith("What the customer likes to be called."), name
    assert FIELD in schemas["CustomerOut"]["required"]


async def test_rest_round_trip_and_redaction(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    created = await client.post("/v1/customers", json=customer_body(nickname="  Xiao Wang "))
    assert created.status_code == 201, created.text
    url = f"/v1/customers/{created.json()['id']}"
    assert created.json()[FIELD] == "Xiao Wang"  # ShortText's rules came along too
    assert (await client.get(url)).json()[FIELD] == "Xiao Wang"
    patched = await client.patch(url, json={FIELD: "Wangzi"})
    assert patched.status_code == 200, patched.text
    assert patched.json()[FIELD] == "Wangzi"
    listed = (await client.get("/v1/customers")).json()["data"]
    assert [c[FIELD] for c in listed] == ["Wangzi"]
    too_long = await client.patch(url, json={FIELD: "x" * 201})
    assert too_long.status_code == 422

    reader = bearer(await make_key("customers:read"))
    seen = (await client.get(url, headers=reader)).json()
    assert seen[FIELD] is None
    assert FIELD in seen["redacted_fields"]


async def test_batch_upsert(client: httpx.AsyncClient) -> None:
    body = customer_body(nickname="Batchy")
    response = await client.post("/v1/customers/batch", json={"items": [body]})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["status"] == "created", result
    assert (await client.get(f"/v1/customers/{result['id']}")).json()[FIELD] == "Batchy"
    again = await client.post("/v1/customers/batch", json={"items": [{**body, FIELD: "Batchier"}]})
    assert again.json()["results"][0]["status"] == "updated"
    assert (await client.get(f"/v1/customers/{result['id']}")).json()[FIELD] == "Batchier"


def _fields(schema: Any, name: str) -> set[str]:
    graphql_type = schema.type_map[name]
    assert isinstance(graphql_type, GraphQLObjectType | GraphQLInputObjectType)
    return set(graphql_type.fields)


def test_graphql_contract() -> None:
    schema = parse_sdl(graphql_sdl())
    for name in ("Customer", "CustomerCreateInput", "CustomerUpdateInput"):
        assert FIELD in _fields(schema, name), name


async def test_graphql_round_trip_and_redaction(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    create = """mutation($input: CustomerCreateInput!) {
        createCustomer(input: $input) { customer { id customerId nickname } } }"""
    body = await gql(client, create, {"input": customer_input(nickname="Xiao Wang")})
    assert "errors" not in body, body
    customer = body["data"]["createCustomer"]["customer"]
    assert customer[FIELD] == "Xiao Wang"
    update = """mutation($id: ID!, $input: CustomerUpdateInput!) {
        updateCustomer(id: $id, input: $input) { customer { nickname } } }"""
    body = await gql(client, update, {"id": customer["id"], "input": {FIELD: "Wangzi"}})
    assert body["data"]["updateCustomer"]["customer"] == {FIELD: "Wangzi"}
    rest = (await client.get(f"/v1/customers/{customer['customerId']}")).json()
    assert rest[FIELD] == "Wangzi"

    read = "query($id: ID!) { customer(id: $id) { nickname redactedFields } }"
    reader = bearer(await make_key("customers:read"))
    seen = await gql(client, read, {"id": customer["id"]}, headers=reader)
    assert seen["data"]["customer"][FIELD] is None
    assert FIELD in seen["data"]["customer"]["redactedFields"]


async def test_events_carry_it_and_the_feed_redacts_it(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    created = await client.post("/v1/customers", json=customer_body(nickname="Xiao Wang"))
    customer_id = created.json()["id"]
    await client.patch(f"/v1/customers/{customer_id}", json={FIELD: "Wangzi"})
    await wait_stamped()
    params = {"customer_id": customer_id}

    feed = (await client.get("/v1/events", params=params)).json()["data"]
    assert [e["type"] for e in feed] == ["customer.created", "customer.updated"]
    assert feed[0]["data"][FIELD] == "Xiao Wang"
    assert feed[1]["data"][FIELD] == "Wangzi"
    assert feed[1]["changes"] == {FIELD: ["Xiao Wang", "Wangzi"]}

    reader = bearer(await make_key("events:read"))
    hidden = (await client.get("/v1/events", params=params, headers=reader)).json()["data"]
    assert hidden[0]["data"][FIELD] is None
    assert FIELD in hidden[0]["data"]["redacted_fields"]
    assert hidden[1]["changes"] == {FIELD: [None, None]}
