"""GraphQL: the Interaction node, the lists and the mutations, over the same services as REST."""

import httpx2 as httpx

from tests.fixtures.api import error_codes, gql
from tests.fixtures.factories import KeyFactory, bearer, create_customer, create_interaction
from tests.interactions.helpers import events_of

FIELDS = "id interactionId customerId channel direction kind status subject dueAt version"

LOG = f"""
mutation($input: InteractionCreateInput!, $key: String) {{
  logInteraction(input: $input, idempotencyKey: $key) {{ replayed interaction {{ {FIELDS} }} }}
}}"""
UPDATE = f"""
mutation($id: ID!, $input: InteractionUpdateInput!, $v: Int) {{
  updateInteraction(id: $id, input: $input, expectedVersion: $v) {{ interaction {{ {FIELDS} }} }}
}}"""


async def test_log_read_and_update(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    variables = {
        "input": {
            "customerId": customer["id"],
            "channel": "WECHAT",
            "direction": "OUTBOUND",
            "kind": "MESSAGE",
            "status": "PLANNED",
            "dueAt": "2030-01-01T09:00:00Z",
            "subject": "Ask about the fit",
        },
        "key": "log-1",
    }
    body = await gql(client, LOG, variables)
    assert "errors" not in body, body
    logged = body["data"]["logInteraction"]
    assert logged["replayed"] is False
    node = logged["interaction"]
    assert node["status"] == "PLANNED"
    again = await gql(client, LOG, variables)
    assert again["data"]["logInteraction"]["replayed"] is True
    assert again["data"]["logInteraction"]["interaction"] == node
    assert len(await events_of("interaction.logged")) == 1

    fetched = await gql(
        client,
        f"query($id: ID!) {{ interaction(id: $id) {{ {FIELDS} }} "
        f"node(id: $id) {{ ... on Interaction {{ subject }} }} }}",
        {"id": node["id"]},
    )
    assert fetched["data"]["interaction"] == node
    assert fetched["data"]["node"] == {"subject": "Ask about the fit"}
    by_raw = await gql(
        client,
        "query($id: ID!) { interaction(id: $id) { subject } }",
        {"id": node["interactionId"]},
    )
    assert by_raw["data"]["interaction"] == {"subject": "Ask about the fit"}

    updated = await gql(
        client, UPDATE, {"id": node["id"], "input": {"status": "COMPLETED"}, "v": 1}
    )
    assert "errors" not in updated, updated
    assert updated["data"]["updateInteraction"]["interaction"]["status"] == "COMPLETED"
    stale = await gql(client, UPDATE, {"id": node["id"], "input": {"subject": "x"}, "v": 1})
    assert error_codes(stale) == ["version_mismatch"]
    illegal = await gql(client, UPDATE, {"id": node["id"], "input": {"status": "PLANNED"}})
    assert error_codes(illegal) == ["illegal_status_change"]


async def test_lists_and_errors(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    a = await create_interaction(client, customer["id"], occurred_at="2026-01-01T00:00:00Z")
    b = await create_interaction(
        client, customer["id"], status="planned", due_at="2030-01-01T00:00:00Z"
    )
    listed = await gql(
        client,
        """query($f: InteractionFilter) { interactions(first: 1, filter: $f, sort: occurred_at) {
             edges { cursor node { interactionId } } pageInfo { hasNextPage } } }""",
        {"f": {"customerId": customer["id"]}},
    )
    assert "errors" not in listed, listed
    page = listed["data"]["interactions"]
    assert [e["node"]["interactionId"] for e in page["edges"]] == [a["id"]]
    assert page["pageInfo"]["hasNextPage"] is True
    follow_ups = await gql(
        client,
        """{ followUps(filter: {status: PLANNED}) { edges { node { interactionId dueAt } } } }""",
    )
    assert [e["node"]["interactionId"] for e in follow_ups["data"]["followUps"]["edges"]] == [
        b["id"]
    ]
    missing = await gql(
        client,
        LOG,
        {
            "input": {
                "customerId": "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f",
                "channel": "PHONE",
                "direction": "INBOUND",
                "kind": "CALL",
            }
        },
    )
    assert error_codes(missing) == ["customer_not_found"]
    invalid = await gql(
        client,
        LOG,
        {"input": {"customerId": customer["id"], "channel": "PHONE", "kind": "CALL"}},
    )
    assert error_codes(invalid) == ["validation_failed"]


async def test_scopes(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    customer = await create_customer(client)
    created = await create_interaction(client, customer["id"])
    reader = bearer(await make_key("interactions:read"))
    read = await gql(
        client,
        "query($id: ID!) { interaction(id: $id) { subject } }",
        {"id": created["id"]},
        headers=reader,
    )
    assert read["data"]["interaction"] == {"subject": created["subject"]}
    write = await gql(
        client,
        LOG,
        {
            "input": {
                "customerId": customer["id"],
                "channel": "PHONE",
                "direction": "INBOUND",
                "kind": "CALL",
            }
        },
        headers=reader,
    )
    assert error_codes(write) == ["missing_scope"]
