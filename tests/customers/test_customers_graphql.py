"""Customers over GraphQL: the same keys, scopes, services and error codes as /v1/customers.

The transport itself (limits, masking, caches) is tested in tests/api/test_graphql.py."""

import base64
from typing import Any

import httpx2 as httpx

from tests.fixtures.api import count_statements, error_codes, gql
from tests.fixtures.factories import PHONE, KeyFactory, bearer, create_customer, customer_input

CUSTOMER_FIELDS = """
    id customerId externalId email phone firstName lastName gender birthDate locale country
    region city incomeBand education occupation tags attributes
    consent { channel purpose status source updatedAt }
    sourceChannel owner notes version createdAt updatedAt
"""

CREATE = f"""
mutation Create($input: CustomerCreateInput!) {{
  createCustomer(input: $input) {{ customer {{ {CUSTOMER_FIELDS} }} }}
}}
"""

LIST = f"""
query List($first: Int!, $after: String, $q: String, $tag: [String!]) {{
  customers(first: $first, after: $after, filter: {{q: $q, tag: $tag}}) {{
    edges {{ cursor node {{ {CUSTOMER_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""

UPDATE = """
mutation Update($id: ID!, $input: CustomerUpdateInput!, $ifMatch: Int) {
  updateCustomer(id: $id, input: $input, ifMatch: $ifMatch) {
    customer { customerId firstName lastName email city version }
  }
}
"""


async def create(client: httpx.AsyncClient, fields: dict[str, Any]) -> dict[str, Any]:
    """createCustomer with this input; asserts no errors and returns the customer."""
    body = await gql(client, CREATE, {"input": fields})
    assert "errors" not in body, body
    customer: dict[str, Any] = body["data"]["createCustomer"]["customer"]
    return customer


async def test_create_via_graphql_then_read_via_rest(client: httpx.AsyncClient) -> None:
    fields = customer_input(
        birthDate="1990-05-01",
        attributes={"vip": True, "shoe_size": 42},
        consent=[{"channel": "email", "purpose": "marketing", "status": "granted"}],
    )
    customer = await create(client, fields)
    assert (
        customer["id"] == base64.b64encode(f"Customer:{customer['customerId']}".encode()).decode()
    )
    assert customer["email"] == fields["email"]
    assert customer["externalId"] == fields["externalId"]
    assert customer["attributes"] == {"vip": True, "shoe_size": 42}
    assert customer["consent"][0]["status"] == "granted"
    assert customer["version"] == 1

    rest = await client.get(f"/v1/customers/{customer['customerId']}")
    assert rest.status_code == 200
    data = rest.json()
    assert data["email"] == customer["email"]
    assert data["phone"] == customer["phone"] == PHONE
    assert data["birth_date"] == "1990-05-01"
    assert data["tags"] == customer["tags"] == ["outdoor"]
    assert data["consent"][0]["channel"] == "email"


async def test_create_via_rest_then_read_via_graphql(client: httpx.AsyncClient) -> None:
    created = await create_customer(client)
    query = f"query($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}"
    by_uuid = await gql(client, query, {"id": created["id"]})
    customer = by_uuid["data"]["customer"]
    assert customer["customerId"] == created["id"]
    assert customer["firstName"] == "Wei"
    assert customer["city"] == "Shanghai"
    by_global = await gql(client, query, {"id": customer["id"]})
    assert by_global["data"]["customer"] == customer

    missing = await gql(client, query, {"id": "0190a5b0-0000-7000-8000-000000000000"})
    assert missing["data"]["customer"] is None
    bad = await gql(client, query, {"id": "not-an-id"})
    assert error_codes(bad) == ["invalid_id"]


async def test_node_by_global_id(client: httpx.AsyncClient) -> None:
    created = await create_customer(client)
    global_id = base64.b64encode(f"Customer:{created['id']}".encode()).decode()
    body = await gql(
        client,
        "query($id: ID!) { node(id: $id) { id __typename ... on Customer { customerId email } } }",
        {"id": global_id},
    )
    assert body["data"]["node"] == {
        "id": global_id,
        "__typename": "Customer",
        "customerId": created["id"],
        "email": created["email"],
    }
    other = base64.b64encode(b"Order:1").decode()
    body = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": other})
    assert body["data"]["node"] is None


async def test_connection_pagination_and_search(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await create_customer(
            client,
            email=f"user{i}@example.com",
            phone=None,
            first_name=f"Name{i}",
            last_name="Zhang" if i < 2 else "Li",
            tags=["vip"] if i % 2 == 0 else ["outdoor"],
        )
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        body = await gql(client, LIST, {"first": 2, "after": after})
        assert "errors" not in body, body
        connection = body["data"]["customers"]
        pages += 1
        seen += [edge["node"]["customerId"] for edge in connection["edges"]]
        info = connection["pageInfo"]
        if connection["edges"]:
            assert info["endCursor"] == connection["edges"][-1]["cursor"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5

    # every edge cursor continues right after its node
    all_edges = (await gql(client, LIST, {"first": 5}))["data"]["customers"]["edges"]
    after_second = await gql(client, LIST, {"first": 5, "after": all_edges[1]["cursor"]})
    ids = [e["node"]["customerId"] for e in after_second["data"]["customers"]["edges"]]
    assert ids == [e["node"]["customerId"] for e in all_edges[2:]]

    # the REST cursor and the GraphQL cursor are the same thing
    rest = (await client.get("/v1/customers", params={"limit": 2})).json()
    first_page = (await gql(client, LIST, {"first": 2}))["data"]["customers"]
    assert rest["next_cursor"] == first_page["pageInfo"]["endCursor"]

    found = await gql(client, LIST, {"first": 10, "q": "zhang"})
    names = sorted(e["node"]["firstName"] for e in found["data"]["customers"]["edges"])
    assert names == ["Name0", "Name1"]
    tagged = await gql(client, LIST, {"first": 10, "tag": ["VIP"]})
    assert len(tagged["data"]["customers"]["edges"]) == 3


async def test_first_over_100_is_a_validation_error(client: httpx.AsyncClient) -> None:
    body = await gql(client, LIST, {"first": 101})
    assert error_codes(body) == ["validation_failed"]
    assert body["errors"][0]["extensions"]["errors"][0]["field"] == "first"
    assert body["data"] is None


async def test_update_is_a_patch_and_checks_the_version(client: httpx.AsyncClient) -> None:
    customer = await create(client, customer_input())
    body = await gql(
        client, UPDATE, {"id": customer["id"], "input": {"city": "Beijing"}, "ifMatch": 1}
    )
    updated = body["data"]["updateCustomer"]["customer"]
    assert updated == {
        "customerId": customer["customerId"],
        "firstName": "Wei",
        "lastName": "Wang",
        "email": customer["email"],
        "city": "Beijing",
        "version": 2,
    }
    cleared = await gql(client, UPDATE, {"id": customer["customerId"], "input": {"lastName": None}})
    assert cleared["data"]["updateCustomer"]["customer"]["lastName"] is None
    assert cleared["data"]["updateCustomer"]["customer"]["city"] == "Beijing"

    stale = await gql(
        client, UPDATE, {"id": customer["id"], "input": {"city": "Xi'an"}, "ifMatch": 1}
    )
    assert stale["data"] is None
    error = stale["errors"][0]
    assert error["extensions"]["code"] == "version_mismatch"
    assert error["extensions"]["status"] == 412
    assert error["path"] == ["updateCustomer"]
    rest = (await client.get(f"/v1/customers/{customer['customerId']}")).json()
    assert rest["city"] == "Beijing"
    assert rest["version"] == 3


async def test_delete(client: httpx.AsyncClient) -> None:
    customer = await create(client, customer_input())
    body = await gql(
        client,
        "mutation($id: ID!) { deleteCustomer(id: $id) { deletedId customerId } }",
        {"id": customer["id"]},
    )
    assert body["data"]["deleteCustomer"] == {
        "deletedId": customer["id"],
        "customerId": customer["customerId"],
    }
    assert (await client.get(f"/v1/customers/{customer['customerId']}")).status_code == 404
    again = await gql(
        client,
        "mutation($id: ID!) { deleteCustomer(id: $id) { customerId } }",
        {"id": customer["id"]},
    )
    assert error_codes(again) == ["customer_not_found"]


async def test_validation_error_shape(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        CREATE,
        {"input": {"firstName": "Wei", "email": "not-an-email", "country": "XX"}},
    )
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "validation_failed"
    assert error["extensions"]["status"] == 422
    fields = {e["field"]: e["message"] for e in error["extensions"]["errors"]}
    assert set(fields) == {"input.email", "input.country"}
    assert all(isinstance(m, str) and m for m in fields.values())

    empty = await gql(client, CREATE, {"input": {}})
    assert error_codes(empty) == ["validation_failed"]

    consent = await gql(
        client,
        CREATE,
        {
            "input": {
                "firstName": "Wei",
                "consent": [{"channel": "fax", "purpose": "x", "status": "granted"}],
            }
        },
    )
    # Channel and purpose are GraphQL enums: GraphQL itself refuses the variable, naming the place.
    assert set(error_codes(consent)) == {"invalid_variables"}
    assert ".consent[0].channel" in consent["errors"][0]["message"]
    assert "ConsentChannel" in consent["errors"][0]["message"]


async def test_conflict_code(client: httpx.AsyncClient) -> None:
    first = await create(client, customer_input())
    body = await gql(client, CREATE, {"input": customer_input(email=first["email"])})
    assert error_codes(body) == ["email_taken"]
    assert body["errors"][0]["extensions"]["status"] == 409


async def test_missing_scope(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    reader = await make_key("customers:read")
    body = await gql(client, CREATE, {"input": customer_input()}, headers=bearer(reader))
    assert error_codes(body) == ["missing_scope"]
    assert body["errors"][0]["extensions"]["status"] == 403

    events_only = await make_key("events:read")
    listing = await gql(client, LIST, {"first": 5}, headers=bearer(events_only))
    assert error_codes(listing) == ["missing_scope"]
    created = await create_customer(client)
    one = await gql(
        client,
        "query($id: ID!) { customer(id: $id) { email } }",
        {"id": created["id"]},
        headers=bearer(events_only),
    )
    assert error_codes(one) == ["missing_scope"]


async def test_pii_is_redacted_without_pii_read(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    created = await create_customer(client, birth_date="1990-05-01")
    headers = bearer(await make_key("customers:read"))
    one = await gql(
        client,
        "query($id: ID!) { customer(id: $id) { email phone birthDate firstName } }",
        {"id": created["id"]},
        headers=headers,
    )
    assert one["data"]["customer"] == {
        "email": None,
        "phone": None,
        "birthDate": None,
        "firstName": "Wei",
    }
    listing = await gql(client, LIST, {"first": 5}, headers=headers)
    node = listing["data"]["customers"]["edges"][0]["node"]
    assert (node["email"], node["phone"], node["birthDate"]) == (None,) * 3

    pii = await make_key("customers:read", "pii:read")
    seen = await gql(
        client,
        "query($id: ID!) { customer(id: $id) { email birthDate } }",
        {"id": created["id"]},
        headers=bearer(pii),
    )
    assert seen["data"]["customer"] == {"email": created["email"], "birthDate": "1990-05-01"}


async def test_constant_number_of_statements(client: httpx.AsyncClient) -> None:
    for i in range(60):
        await create_customer(client, email=f"bulk{i}@example.com", phone=None, first_name=f"B{i}")
    counts = {}
    for first in (5, 50):
        await gql(client, "{ __typename }")  # the API key is resolved (and cached) uncounted
        with count_statements() as statements:
            body = await gql(client, LIST, {"first": first})
        assert "errors" not in body, body
        assert len(body["data"]["customers"]["edges"]) == first
        counts[first] = len(statements)
    print(f"statements per customers query: {counts}")
    assert 1 <= counts[5] == counts[50] <= 3, counts

    # ten customers fetched by id in one request: one statement through the DataLoader
    ids = [e["node"]["id"] for e in body["data"]["customers"]["edges"][:10]]
    query = (
        "{ "
        + " ".join(f'c{i}: customer(id: "{cid}") {{ email }}' for i, cid in enumerate(ids))
        + " }"
    )
    await gql(client, "{ __typename }")
    with count_statements() as statements:
        batched = await gql(client, query)
    assert "errors" not in batched
    assert len(statements) == 1, statements


async def test_invalid_ids(client: httpx.AsyncClient) -> None:
    for bad in ("nope", base64.b64encode(b"Customer:not-a-uuid").decode(), "Q3VzdG9tZXI="):
        body = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": bad})
        assert error_codes(body) == ["invalid_id"], (bad, body)
