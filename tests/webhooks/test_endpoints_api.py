"""Webhook endpoints over REST: registration with a secret shown once, targets checked, changes
under If-Match, secret rotation, removal, scopes."""

import base64
import json
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from app.core import clock
from app.db import read_connection
from app.webhooks.repository import endpoints as endpoints_table
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import KeyFactory, bearer

BASE = "/v1/webhooks/endpoints"
URL = "http://127.0.0.1:9/hooks"


async def _register(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post(BASE, json={"url": URL, **overrides})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _stored(endpoint_id: str) -> Any:
    async with read_connection() as conn:
        query = select(endpoints_table).where(endpoints_table.c.id == endpoint_id)
        return (await conn.execute(query)).one()


@pytest.mark.usefixtures("allow_local_targets")
async def test_register_shows_the_secret_once(client: httpx.AsyncClient) -> None:
    response = await client.post(
        BASE, json={"url": URL, "event_types": ["customer.*", "customer.created", "customer.*"]}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"{BASE}/{created['id']}"
    assert response.headers["etag"] == '"v1"'
    assert created["event_types"] == ["customer.*", "customer.created"]
    assert created["enabled"] is True
    assert created["include_pii"] is True  # an admin key has pii:read
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    # A usable Standard Webhooks secret.
    signed = Webhook(secret)
    now = clock.now()
    signature = signed.sign("msg_1", now, '{"a":1}')
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp()))}
    assert signed.verify('{"a":1}', {**headers, "webhook-signature": signature}) == {"a": 1}

    fetched = await client.get(f"{BASE}/{created['id']}")
    assert fetched.status_code == 200
    assert "secret" not in fetched.json()
    assert fetched.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = (await client.get(BASE)).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert secret not in json.dumps(listed)
    assert (await _stored(created["id"])).secret == secret


@pytest.mark.usefixtures("allow_local_targets")
async def test_defaults_and_labels(client: httpx.AsyncClient) -> None:
    created = await _register(client, metadata={"team": "shop"}, description="  sync  ")
    assert created["event_types"] == ["*"]
    assert created["metadata"] == {"team": "shop"}
    assert created["description"] == "sync"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://127.0.0.1/hooks"}, "body.url"),  # loopback, not allowed by default
        ({"url": "http://partner.example.com/"}, "body.url"),  # plain http
        ({"url": "file:///etc/passwd"}, "body.url"),
        ({"url": "not a url"}, "body.url"),
        ({"url": URL, "event_types": ["custmer.*"]}, "body.event_types"),
        ({"url": URL, "event_types": []}, "body.event_types"),
        ({"url": URL, "metadata": {f"k{i}": "v" for i in range(51)}}, "body.metadata"),
        ({"url": URL, "metadata": {"k": "v\u0000"}}, "body.metadata.k"),
        ({"url": URL, "enabled": "yes please"}, "body.enabled"),
    ],
)
async def test_refused_registrations(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await client.post(BASE, json=body), 422, "validation_failed")
    assert field in [e["field"] for e in problem["errors"]], problem
    assert (await client.get(BASE)).json()["data"] == []


@pytest.mark.usefixtures("allow_local_targets")
async def test_update_under_if_match(client: httpx.AsyncClient) -> None:
    created = await _register(client)
    path = f"{BASE}/{created['id']}"
    changed = await client.patch(
        path, json={"event_types": ["order.*"], "enabled": False}, headers={"If-Match": '"v1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["order.*"]
    assert changed.json()["enabled"] is False
    assert changed.headers["etag"] == '"v2"'
    stale = await client.patch(path, json={"description": "x"}, headers={"If-Match": '"v1"'})
    assert_problem(stale, 412, "version_mismatch")
    refused = await client.patch(path, json={"url": "https://10.0.0.1/"})
    assert_problem(refused, 422, "validation_failed")
    assert_problem(await client.patch(path, json={"url": None}), 422, "validation_failed")
    unchanged = await client.get(path)
    assert unchanged.json()["url"] == URL
    assert unchanged.json()["version"] == 2


@pytest.mark.usefixtures("allow_local_targets")
async def test_rotation_keeps_the_old_secret_for_a_day(client: httpx.AsyncClient) -> None:
    created = await _register(client)
    rotated = await client.post(f"{BASE}/{created['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != created["secret"]
    assert body["version"] == 2
    stored = await _stored(created["id"])
    assert (stored.secret, stored.previous_secret) == (body["secret"], created["secret"])
    expires = stored.previous_secret_expires_at
    assert timedelta(hours=23, minutes=59) < expires - clock.now() <= timedelta(hours=24)
    assert body["previous_secret_expires_at"] is not None


@pytest.mark.usefixtures("allow_local_targets")
async def test_delete_stops_the_endpoint(client: httpx.AsyncClient) -> None:
    created = await _register(client)
    path = f"{BASE}/{created['id']}"
    assert (await client.delete(path)).status_code == 204
    assert_problem(await client.get(path), 404, "webhook_endpoint_not_found")
    assert_problem(await client.delete(path), 404, "webhook_endpoint_not_found")
    assert (await client.get(BASE)).json()["data"] == []
    stored = await _stored(created["id"])
    assert stored.deleted_at is not None
    assert stored.enabled is False


@pytest.mark.usefixtures("allow_local_targets")
async def test_scopes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    manager = bearer(await make_key("webhooks:manage"))
    created = await anon.post(BASE, json={"url": URL}, headers=manager)
    assert created.status_code == 201, created.text
    assert created.json()["include_pii"] is False  # the key has no pii:read
    other = bearer(await make_key("customers:write", "events:read"))
    assert_problem(await anon.get(BASE, headers=other), 403, "missing_scope")
    assert_problem(await anon.post(BASE, json={"url": URL}, headers=other), 403, "missing_scope")
    path = f"{BASE}/{created.json()['id']}"
    assert_problem(await anon.delete(path, headers=other), 403, "missing_scope")
    assert (await client.get(path)).status_code == 200
