"""Webhook endpoints over GraphQL: the same service as REST, the secret only in the payloads that
make one."""

import httpx2 as httpx
import pytest

from tests.fixtures.api import error_codes, gql
from tests.fixtures.factories import KeyFactory, bearer

FIELDS = "id webhookEndpointId url eventTypes enabled metadata includePii version"
CREATE = f"""mutation($input: WebhookEndpointCreateInput!) {{
  createWebhookEndpoint(input: $input) {{ secret webhookEndpoint {{ {FIELDS} }} }} }}"""
URL = "http://127.0.0.1:9/hooks"


@pytest.mark.usefixtures("allow_local_targets")
async def test_lifecycle(client: httpx.AsyncClient) -> None:
    created = await gql(
        client, CREATE, {"input": {"url": URL, "eventTypes": ["order.*"], "metadata": {"a": "b"}}}
    )
    assert "errors" not in created, created
    payload = created["data"]["createWebhookEndpoint"]
    assert payload["secret"].startswith("whsec_")
    endpoint = payload["webhookEndpoint"]
    assert (endpoint["url"], endpoint["eventTypes"], endpoint["metadata"]) == (
        URL,
        ["order.*"],
        {"a": "b"},
    )
    rest = await client.get(f"/v1/webhooks/endpoints/{endpoint['webhookEndpointId']}")
    assert rest.json()["event_types"] == ["order.*"]

    listed = await gql(client, f"{{ webhookEndpoints {{ edges {{ node {{ {FIELDS} }} }} }} }}")
    assert [e["node"]["id"] for e in listed["data"]["webhookEndpoints"]["edges"]] == [
        endpoint["id"]
    ]
    by_node = await gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on WebhookEndpoint { url } } }",
        {"id": endpoint["id"]},
    )
    assert by_node["data"]["node"] == {"url": URL}

    rotated = await gql(
        client,
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) "
        "{ secret webhookEndpoint { version } } }",
        {"id": endpoint["id"]},
    )
    assert rotated["data"]["rotateWebhookSecret"]["secret"] not in (None, payload["secret"])
    assert rotated["data"]["rotateWebhookSecret"]["webhookEndpoint"]["version"] == 2

    stale = await gql(
        client,
        "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}, ifMatch: 1)"
        " { webhookEndpoint { enabled } } }",
        {"id": endpoint["id"]},
    )
    assert error_codes(stale) == ["version_mismatch"]
    deleted = await gql(
        client,
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { webhookEndpointId } }",
        {"id": endpoint["id"]},
    )
    assert (
        deleted["data"]["deleteWebhookEndpoint"]["webhookEndpointId"]
        == (endpoint["webhookEndpointId"])
    )
    gone = await gql(
        client, "query($id: ID!) { webhookEndpoint(id: $id) { id } }", {"id": endpoint["id"]}
    )
    assert gone["data"]["webhookEndpoint"] is None


async def test_refused_url_and_scope(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    refused = await gql(client, CREATE, {"input": {"url": "https://169.254.169.254/"}})
    assert error_codes(refused) == ["validation_failed"]
    reader = bearer(await make_key("customers:read"))
    denied = await gql(anon, "{ webhookEndpoints { edges { cursor } } }", headers=reader)
    assert error_codes(denied) == ["missing_scope"]
