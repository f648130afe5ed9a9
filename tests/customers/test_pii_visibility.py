"""Keys without pii:read: PII is null and named in redacted_fields, and neither filters, searches
nor conflict messages tell them whose email or phone is on file."""

import httpx2 as httpx

from tests.fixtures.api import gql
from tests.fixtures.factories import PHONE, KeyFactory, bearer, create_customer, customer_body


async def test_redacted_fields_are_null_and_listed(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    full = await create_customer(client, birth_date="1990-05-01")
    assert full["redacted_fields"] == []
    assert full["birth_date"] == "1990-05-01"
    partial = await create_customer(client, email=None, phone=None, external_id="x-1")
    reader = bearer(await make_key("customers:read"))

    one = (await client.get(f"/v1/customers/{full['id']}", headers=reader)).json()
    assert (one["email"], one["phone"], one["birth_date"]) == (None, None, None)
    assert one["redacted_fields"] == ["birth_date", "email", "phone"]
    other = (await client.get(f"/v1/customers/{partial['id']}", headers=reader)).json()
    assert other["redacted_fields"] == []  # nothing to hide: no PII on file
    listed = (await client.get("/v1/customers", headers=reader)).json()["data"]
    assert [c["redacted_fields"] for c in listed] == [[], ["birth_date", "email", "phone"]]

    query = """query($id: ID!) { customer(id: $id) { email phone birthDate redactedFields } }"""
    seen = await gql(client, query, {"id": full["id"]}, headers=reader)
    assert seen["data"]["customer"] == {
        "email": None,
        "phone": None,
        "birthDate": None,
        "redactedFields": ["birth_date", "email", "phone"],
    }
    admin = await gql(client, query, {"id": full["id"]})
    assert admin["data"]["customer"] == {
        "email": full["email"],
        "phone": PHONE,
        "birthDate": "1990-05-01",
        "redactedFields": [],
    }


async def test_contracts_type_the_pii_fields(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["CustomerOut"]
    props = schema["properties"]
    assert any(b.get("format") == "email" for b in props["email"]["anyOf"])
    assert all(props[f].get("x-pii") for f in ("email", "phone", "birth_date"))
    assert not any(props[f].get("x-pii") for f in ("first_name", "city", "tags"))
    assert {"type": "string", "format": "date"} in props["birth_date"]["anyOf"]
    assert all(
        b.get("format") == "date" or b == {"type": "null"} for b in props["birth_date"]["anyOf"]
    )
    assert props["redacted_fields"]["type"] == "array"
    assert "redacted_fields" in schema["required"]
    from app.contracts import graphql_sdl

    sdl = graphql_sdl()
    assert "birthDate: Date" in sdl
    assert "redactedFields: [String!]!" in sdl


async def test_pii_filters_need_pii_read(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    email = (await create_customer(client))["email"]
    reader = bearer(await make_key("customers:read"))
    for params in ({"email": email}, {"phone": PHONE}, {"email": "x"}):
        refused = await client.get("/v1/customers", params=params, headers=reader)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "pii_read_required"
    pii = bearer(await make_key("customers:read", "pii:read"))
    found = await client.get("/v1/customers", params={"email": email}, headers=pii)
    assert len(found.json()["data"]) == 1


async def test_free_text_search_matches_names_only_without_pii_read(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    await create_customer(
        client, first_name="Lin", last_name="Mei", email="zebra.secret@example.com"
    )
    reader = bearer(await make_key("customers:read"))
    pii = bearer(await make_key("customers:read", "pii:read"))

    async def rest(q: str, headers: dict[str, str]) -> list[str]:
        response = await client.get("/v1/customers", params={"q": q}, headers=headers)
        assert response.status_code == 200, response.text
        return [c["first_name"] for c in response.json()["data"]]

    list_query = "query($q: String) { customers(first: 5, filter: {q: $q}) { edges { node { firstName } } } }"

    async def graphql(q: str, headers: dict[str, str]) -> list[str]:
        body = await gql(client, list_query, {"q": q}, headers=headers)
        return [e["node"]["firstName"] for e in body["data"]["customers"]["edges"]]

    for search in (rest, graphql):
        assert await search("zebra.secret", pii) == ["Lin"]
        assert await search("13800138", pii) == ["Lin"]
        assert await search("zebra.secret", reader) == []
        assert await search("13800138", reader) == []
        assert await search("zebra.secre", reader) == []  # nor by similarity
        assert await search("lin mei", reader) == ["Lin"]
        assert await search("Mei", reader) == ["Lin"]
        assert await search("meilin", reader) == ["Lin"]  # family name first


async def test_email_taken_does_not_name_the_holder(client: httpx.AsyncClient) -> None:
    holder = await create_customer(client, external_id="h-1")
    again = await client.post(
        "/v1/customers", json=customer_body(external_id="other", email=holder["email"])
    )
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"
    assert holder["id"] not in again.text
    other = await create_customer(client, email="b@example.com")
    patched = await client.patch(f"/v1/customers/{other['id']}", json={"email": holder["email"]})
    assert patched.status_code == 409
    assert holder["id"] not in patched.text
    batch = await client.post(
        "/v1/customers/batch",
        json={"items": [customer_body(external_id="new-1", email=holder["email"])]},
    )
    assert batch.status_code == 200
    assert batch.json()["results"][0]["error"]["code"] == "email_taken"
    assert holder["id"] not in batch.text
    mutation = """mutation($input: CustomerCreateInput!) {
      createCustomer(input: $input) { customer { id } } }"""
    body = await gql(client, mutation, {"input": {"email": holder["email"], "externalId": "g-1"}})
    assert body["errors"][0]["extensions"]["code"] == "email_taken"
    assert holder["id"] not in str(body)
