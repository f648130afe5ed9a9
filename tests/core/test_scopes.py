"""Scopes: admin grants everything; a resource's write scope includes its read scope."""

import uuid

import httpx2 as httpx

from app.core.auth import Caller
from tests.fixtures.factories import KeyFactory, bearer, create_customer


def caller(*scopes: str) -> Caller:
    return Caller(key_id=uuid.uuid4(), name="t", scopes=frozenset(scopes))


def test_write_scope_includes_read_of_the_same_resource() -> None:
    writer = caller("customers:write")
    assert writer.has("customers:read")
    assert writer.has("customers:write")
    assert not writer.has("orders:read")
    assert not writer.has("pii:read")
    assert not caller("customers:read").has("customers:write")
    assert caller("admin").has("pii:read")


async def test_writer_key_reads_customers_but_not_pii(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    created = await create_customer(client)
    writer = bearer(await make_key("customers:write"))
    one = await client.get(f"/v1/customers/{created['id']}", headers=writer)
    assert one.status_code == 200, one.text
    assert one.json()["first_name"] == "Wei"
    assert one.json()["email"] is None
    listing = await client.get("/v1/customers", headers=writer)
    assert listing.status_code == 200
    assert [c["id"] for c in listing.json()["data"]] == [created["id"]]
    graphql = await client.post(
        "/graphql",
        json={"query": "{ customers(first: 5) { edges { node { firstName email } } } }"},
        headers=writer,
    )
    assert graphql.json() == {
        "data": {"customers": {"edges": [{"node": {"firstName": "Wei", "email": None}}]}}
    }
