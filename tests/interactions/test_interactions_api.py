"""REST: logging, reading, listing and updating interactions, with their rules and events."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import time_machine

from app.core import clock
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import (
    KeyFactory,
    bearer,
    create_customer,
    create_interaction,
    interaction_body,
)
from tests.interactions.helpers import events_of, store_case


async def test_log_get_and_event(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = interaction_body(
        customer["id"],
        body="Parcel is late",
        duration_seconds=120,
        attributes={"queue": "delivery"},
        occurred_at="2026-01-05T08:00:00+08:00",
    )
    response = await client.post("/v1/interactions", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/v1/interactions/{created['id']}"
    assert response.headers["etag"] == '"v1"'
    assert created["status"] == "completed"
    assert created["occurred_at"] == "2026-01-05T00:00:00Z"
    assert created["completed_at"] == created["occurred_at"]
    assert created["attributes"] == {"queue": "delivery"}
    fetched = await client.get(f"/v1/interactions/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created
    [event] = await events_of("interaction.logged", customer["id"])
    assert event.data == created


async def test_occurred_at_defaults_to_now(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        created = await create_interaction(client, customer["id"])
    assert created["occurred_at"] == "2026-03-01T12:00:00Z"
    assert created["created_at"] == "2026-03-01T12:00:00Z"


async def test_unknown_or_deleted_customer_is_a_422(client: httpx.AsyncClient) -> None:
    missing = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
    response = await client.post("/v1/interactions", json=interaction_body(missing))
    problem = assert_problem(response, 422, "customer_not_found")
    assert problem["errors"][0]["field"] == "body.customer_id"
    customer = await create_customer(client)
    assert (await client.delete(f"/v1/customers/{customer['id']}")).status_code == 204
    response = await client.post("/v1/interactions", json=interaction_body(customer["id"]))
    assert_problem(response, 422, "customer_not_found")
    assert await events_of("interaction.logged") == []


async def test_case_must_belong_to_the_customer(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    case_id = await store_case(other["id"])
    for case in (case_id, "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"):
        response = await client.post(
            "/v1/interactions", json=interaction_body(customer["id"], case_id=case)
        )
        problem = assert_problem(response, 422, "case_not_found")
        assert problem["errors"][0]["field"] == "body.case_id"
    own_case = await store_case(customer["id"])
    created = await create_interaction(client, customer["id"], case_id=own_case)
    assert created["case_id"] == own_case


async def test_body_limit_is_in_utf8_bytes(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    exact = "中" * 21845 + "a"  # 65,536 bytes
    assert len(exact.encode()) == 65536
    created = await create_interaction(client, customer["id"], body=exact)
    assert created["body"] == exact
    response = await client.post(
        "/v1/interactions", json=interaction_body(customer["id"], body=exact + "b")
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["field"] == "body.body"


async def test_field_rules(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    soon = (clock.now() + timedelta(minutes=2)).isoformat()
    later = (clock.now() + timedelta(hours=1)).isoformat()
    bad: dict[str, dict[str, Any]] = {
        "due_at": {"status": "planned"},  # planned needs due_at
        "due_at ": {"due_at": later},  # due_at only for planned
        "source": {"source": None},  # external_id needs source
        "occurred_at": {"occurred_at": later},  # completed, in the future
        "duration_seconds": {"duration_seconds": 7 * 24 * 3600 + 1},
        "subject": {"subject": "x" * 501},
        "kind": {"kind": "telepathy"},
        "attributes": {"attributes": {"Bad Key": 1}},
        "extra": {"extra": 1},
    }
    for field, overrides in bad.items():
        response = await client.post(
            "/v1/interactions", json=interaction_body(customer["id"], **overrides)
        )
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"][0]["field"] == f"body.{field.strip()}", problem
    missing_channel = interaction_body(customer["id"])
    # a few minutes ahead is clock drift, not the future
    created = await create_interaction(client, customer["id"], occurred_at=soon)
    assert created["status"] == "completed"
    response = await client.post("/v1/interactions", json={**missing_channel, "customer_id": "x"})
    assert_problem(response, 422, "validation_failed")
    missing = interaction_body(customer["id"])
    del missing["channel"]
    assert_problem(await client.post("/v1/interactions", json=missing), 422, "validation_failed")


async def test_source_external_id_is_idempotent(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    body = interaction_body(customer["id"])
    first = await client.post("/v1/interactions", json=body)
    assert first.status_code == 201
    again = await client.post("/v1/interactions", json={**body, "subject": "changed"})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert "location" not in again.headers
    assert len(await events_of("interaction.logged")) == 1
    conflict = await client.post("/v1/interactions", json={**body, "customer_id": other["id"]})
    assert_problem(conflict, 409, "external_id_conflict")
    # the pair is per source
    elsewhere = await client.post("/v1/interactions", json={**body, "source": "shop"})
    assert elsewhere.status_code == 201
    # without external_id nothing is deduplicated
    plain = interaction_body(customer["id"], source=None, external_id=None)
    statuses = [(await client.post("/v1/interactions", json=plain)).status_code for _ in "ab"]
    assert statuses == [201, 201]


async def test_list_filters_and_sorts(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    a = await create_interaction(
        client, customer["id"], occurred_at="2026-01-01T10:00:00Z", channel="email", kind="message"
    )
    b = await create_interaction(
        client, customer["id"], occurred_at="2026-01-02T10:00:00Z", direction="outbound"
    )
    c = await create_interaction(client, other["id"], occurred_at="2026-01-03T10:00:00Z")

    async def ids(**params: str) -> list[str]:
        response = await client.get("/v1/interactions", params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["data"]]

    assert await ids() == [c["id"], b["id"], a["id"]]
    assert await ids(sort="occurred_at") == [a["id"], b["id"], c["id"]]
    assert await ids(sort="created_at") == [a["id"], b["id"], c["id"]]
    assert await ids(customer_id=customer["id"]) == [b["id"], a["id"]]
    assert await ids(channel="email") == [a["id"]]
    assert await ids(direction="outbound") == [b["id"]]
    assert await ids(kind="message") == [a["id"]]
    assert await ids(source="call-center", external_id=a["external_id"]) == [a["id"]]
    assert await ids(occurred_after="2026-01-02T10:00:00Z") == [c["id"], b["id"]]
    assert await ids(occurred_before="2026-01-02T10:00:00Z") == [a["id"]]
    assert await ids(agent="nobody") == []
    assert await ids(status="planned") == []
    first = await client.get("/v1/interactions", params={"limit": 2})
    page = first.json()
    assert page["has_more"] is True
    rest = await client.get("/v1/interactions", params={"limit": 2, "cursor": page["next_cursor"]})
    assert [i["id"] for i in rest.json()["data"]] == [a["id"]]
    assert_problem(
        await client.get("/v1/interactions", params={"channel": "fax"}), 422, "validation_failed"
    )
    assert_problem(
        await client.get("/v1/interactions", params={"nope": "1"}), 400, "unknown_parameter"
    )


async def test_get_unknown_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/interactions/01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f")
    assert_problem(response, 404, "interaction_not_found")


async def test_patch_changes_fields_with_if_match_and_event(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    created = await create_interaction(client, customer["id"], attributes={"a": 1, "b": 2})
    url = f"/v1/interactions/{created['id']}"
    response = await client.patch(
        url,
        json={"subject": "New subject", "outcome": "sorted", "attributes": {"a": None, "c": 3}},
        headers={"If-Match": '"v1"'},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["version"] == 2
    assert response.headers["etag"] == '"v2"'
    assert updated["attributes"] == {"b": 2, "c": 3}
    stale = await client.patch(url, json={"subject": "x"}, headers={"If-Match": '"v1"'})
    assert_problem(stale, 412, "version_mismatch")
    [event] = await events_of("interaction.updated", customer["id"])
    assert event.data == updated
    assert event.changes == {
        "subject": [created["subject"], "New subject"],
        "outcome": [None, "sorted"],
        "attributes": [{"a": 1, "b": 2}, {"b": 2, "c": 3}],
    }
    # nothing changes: no new version, no event
    same = await client.patch(url, json={"subject": "New subject"})
    assert same.json()["version"] == 2
    assert len(await events_of("interaction.updated")) == 1
    for null in ("channel", "direction", "kind", "status"):
        problem = assert_problem(
            await client.patch(url, json={null: None}), 422, "validation_failed"
        )
        assert problem["errors"][0]["field"] == f"body.{null}"
    assert_problem(
        await client.patch(url, json={"customer_id": customer["id"]}), 422, "validation_failed"
    )
    missing = "/v1/interactions/01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
    assert_problem(await client.patch(missing, json={"subject": "x"}), 404, "interaction_not_found")


async def test_status_rules(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    done = await create_interaction(client, customer["id"])
    url = f"/v1/interactions/{done['id']}"
    for status in ("planned", "cancelled"):
        problem = assert_problem(
            await client.patch(url, json={"status": status, "due_at": "2030-01-01T00:00:00Z"}),
            409,
            "illegal_status_change",
        )
        assert "none" in problem["detail"]
    problem = assert_problem(
        await client.patch(url, json={"due_at": "2030-01-01T00:00:00Z"}), 422, "validation_failed"
    )
    assert problem["errors"][0]["field"] == "body.due_at"

    due = "2030-01-01T09:00:00Z"
    planned = await create_interaction(client, customer["id"], status="planned", due_at=due)
    assert planned["completed_at"] is None
    url = f"/v1/interactions/{planned['id']}"
    assert_problem(await client.patch(url, json={"due_at": None}), 422, "validation_failed")
    moment = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        response = await client.patch(url, json={"status": "completed", "outcome": "done"})
    assert response.status_code == 200, response.text
    completed = response.json()
    assert completed["status"] == "completed"
    assert completed["completed_at"] == completed["occurred_at"] == "2026-06-01T10:00:00Z"
    assert completed["outcome"] == "done"
    assert completed["due_at"] == due
    problem = assert_problem(
        await client.patch(url, json={"status": "planned"}), 409, "illegal_status_change"
    )
    assert "completed to planned" in problem["detail"]

    other = await create_interaction(client, customer["id"], status="planned", due_at=due)
    url = f"/v1/interactions/{other['id']}"
    given = await client.patch(
        url, json={"status": "completed", "occurred_at": "2026-05-31T08:00:00Z"}
    )
    assert given.json()["occurred_at"] == "2026-05-31T08:00:00Z"

    dropped = await create_interaction(client, customer["id"], status="planned", due_at=due)
    url = f"/v1/interactions/{dropped['id']}"
    cancelled = await client.patch(url, json={"status": "cancelled"})
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["completed_at"] is None
    assert_problem(
        await client.patch(url, json={"status": "completed"}), 409, "illegal_status_change"
    )


async def test_scopes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    customer = await create_customer(client)
    created = await create_interaction(client, customer["id"])
    url = f"/v1/interactions/{created['id']}"
    reader = bearer(await make_key("interactions:read"))
    assert (await anon.get(url, headers=reader)).status_code == 200
    assert (await anon.get("/v1/follow-ups", headers=reader)).status_code == 200
    body = interaction_body(customer["id"])
    assert_problem(
        await anon.post("/v1/interactions", json=body, headers=reader), 403, "missing_scope"
    )
    assert_problem(
        await anon.patch(url, json={"subject": "x"}, headers=reader), 403, "missing_scope"
    )
    batch = {"items": [body]}
    assert_problem(
        await anon.post("/v1/interactions/batch", json=batch, headers=reader), 403, "missing_scope"
    )
    writer = bearer(await make_key("interactions:write"))
    assert (await anon.post("/v1/interactions", json=body, headers=writer)).status_code == 201
    assert (await anon.get(url, headers=writer)).status_code == 200
    other = bearer(await make_key("customers:read"))
    assert_problem(await anon.get(url, headers=other), 403, "missing_scope")
    assert_problem(await anon.get(url), 401, "unauthorized")
    assert_problem(await anon.get("/v1/follow-ups"), 401, "unauthorized")


async def test_idempotency_key_replays_the_create(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = interaction_body(customer["id"], source=None, external_id=None)
    headers = {"Idempotency-Key": "log-call-1"}
    first = await client.post("/v1/interactions", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post("/v1/interactions", json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await events_of("interaction.logged")) == 1
