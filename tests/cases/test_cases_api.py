"""Cases over REST: opening, reading, listing, updating; scopes, validation and events."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx2 as httpx
import pytest
import time_machine

from app.cases.enums import CaseStatus
from tests.cases.helpers import case_in, events_of, move
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import KeyFactory, bearer, case_body, create_customer, open_case

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_open_sets_status_deadlines_history_and_event(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    with time_machine.travel(OPENED, tick=False):
        response = await client.post("/v1/cases", json=case_body(customer["id"]))
    assert response.status_code == 201, response.text
    case = response.json()
    assert response.headers["etag"] == '"v1"'
    assert response.headers["location"] == f"/v1/cases/{case['id']}"
    assert case["status"] == "open"
    assert case["priority"] == "normal"
    assert case["opened_at"] == "2026-03-02T09:00:00Z"
    # The seeded normal policy: 8 h to the first response, 3 days to the resolution, all hours.
    assert case["first_response_due_at"] == "2026-03-02T17:00:00Z"
    assert case["resolution_due_at"] == "2026-03-05T09:00:00Z"
    assert case["sla_clock_started_at"] == "2026-03-02T09:00:00Z"
    assert case["sla_consumed_seconds"] == 0
    history = (await client.get(f"/v1/cases/{case['id']}/transitions")).json()["data"]
    assert [(t["from_status"], t["to_status"]) for t in history] == [(None, "open")]
    assert history[0]["actor"] == "test"
    [opened] = await events_of("case.opened")
    assert opened["data"] == case
    assert str(opened["customer_id"]) == customer["id"]


async def test_unknown_or_deleted_customer_is_422(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/v1/cases", json=case_body(str(uuid.uuid4())))
    body = assert_problem(unknown, 422, "customer_not_found")
    assert body["errors"][0]["field"] == "body.customer_id"
    customer = await create_customer(client)
    assert (await client.delete(f"/v1/customers/{customer['id']}")).status_code == 204
    deleted = await client.post("/v1/cases", json=case_body(customer["id"]))
    assert assert_problem(deleted, 422, "customer_not_found")["errors"][0]["field"] == (
        "body.customer_id"
    )


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"subject": None}, "body.subject"),
        ({"subject": "  "}, "body.subject"),
        ({"subject": "a\u0000b"}, "body.subject"),
        ({"category": "weather"}, "body.category"),
        ({"priority": "asap"}, "body.priority"),
        ({"channel": "pigeon"}, "body.channel"),
        ({"status": "closed"}, "body.status"),
        ({"attributes": {"Bad Key": 1}}, "body.attributes"),
        ({"description": "x" * 10_001}, "body.description"),
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, override: dict[str, object], field: str
) -> None:
    customer = await create_customer(client)
    response = await client.post("/v1/cases", json=case_body(customer["id"], **override))
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["field"].startswith(field), body


async def test_hostile_json_is_422(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    hostile = (
        f'{{"customer_id": "{customer["id"]}", "category": "billing", "subject": "x", '
        '"attributes": {"a": "\\ud800"}}'
    )
    response = await client.post(
        "/v1/cases", content=hostile, headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_failed")
    too_big = await client.post(
        "/v1/cases", json=case_body(customer["id"], attributes={"n": 2**60})
    )
    assert_problem(too_big, 422, "validation_failed")


async def test_get_404_and_list_filters(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"/v1/cases/{uuid.uuid4()}"), 404, "case_not_found")
    customer = await create_customer(client)
    other = await create_customer(client)
    with time_machine.travel(OPENED, tick=False) as traveller:
        first = await open_case(client, customer["id"], priority="high", assignee="li.na")
        traveller.shift(timedelta(hours=1))
        second = await open_case(client, customer["id"], category="billing", channel="email")
        traveller.shift(timedelta(hours=1))
        third = await open_case(client, other["id"])
    got = await client.get(f"/v1/cases/{first['id']}")
    assert got.json() == first
    assert got.headers["etag"] == '"v1"'

    async def ids(**params: str) -> list[str]:
        response = await client.get("/v1/cases", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["data"]]

    assert await ids() == [third["id"], second["id"], first["id"]]
    assert await ids(sort="opened_at") == [first["id"], second["id"], third["id"]]
    assert await ids(customer_id=customer["id"]) == [second["id"], first["id"]]
    assert await ids(priority="high") == [first["id"]]
    assert await ids(assignee="li.na") == [first["id"]]
    assert await ids(category="billing", channel="email") == [second["id"]]
    assert await ids(status="open", breached="false") == [third["id"], second["id"], first["id"]]
    assert await ids(breached="true") == []
    after = (OPENED + timedelta(minutes=30)).isoformat()
    before = (OPENED + timedelta(minutes=90)).isoformat()
    assert await ids(opened_after=after, opened_before=before) == [second["id"]]
    page = (await client.get("/v1/cases", params={"limit": "2"})).json()
    assert page["has_more"] is True
    rest = await client.get("/v1/cases", params={"limit": "2", "cursor": page["next_cursor"]})
    assert [c["id"] for c in rest.json()["data"]] == [first["id"]]
    assert_problem(
        await client.get("/v1/cases", params={"status": "lost"}), 422, "validation_failed"
    )
    assert_problem(
        await client.get("/v1/cases", params={"colour": "red"}), 400, "unknown_parameter"
    )


async def test_patch_with_if_match_records_case_updated(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    case = await open_case(client, customer["id"], attributes={"order_no": "A1", "vip": True})
    url = f"/v1/cases/{case['id']}"
    stale = await client.patch(url, json={"assignee": "x"}, headers={"If-Match": '"v9"'})
    assert_problem(stale, 412, "version_mismatch")
    response = await client.patch(
        url,
        json={"assignee": "zhang.min", "attributes": {"vip": None, "level": 2}},
        headers={"If-Match": '"v1"'},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert response.headers["etag"] == '"v2"'
    assert updated["assignee"] == "zhang.min"
    assert updated["attributes"] == {"order_no": "A1", "level": 2}
    [event] = await events_of("case.updated")
    assert event["changes"] == {
        "assignee": [None, "zhang.min"],
        "attributes": [{"order_no": "A1", "vip": True}, {"order_no": "A1", "level": 2}],
    }
    assert event["data"] == updated
    # Nothing changes: no new version, no event.
    same = await client.patch(url, json={"assignee": "zhang.min"})
    assert same.json()["version"] == 2
    assert len(await events_of("case.updated")) == 1
    # Status is a transition, never a field; required fields cannot be cleared.
    assert_problem(await client.patch(url, json={"status": "closed"}), 422, "validation_failed")
    nulled = await client.patch(url, json={"subject": None})
    assert assert_problem(nulled, 422, "validation_failed")["errors"][0]["field"] == "body.subject"
    assert_problem(
        await client.patch(f"/v1/cases/{uuid.uuid4()}", json={"assignee": "x"}),
        404,
        "case_not_found",
    )


async def test_scopes(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    customer = await create_customer(client)
    case = await open_case(client, customer["id"])
    reader = bearer(await make_key("cases:read"))
    writer = bearer(await make_key("cases:write"))
    stranger = bearer(await make_key("customers:read"))
    url = f"/v1/cases/{case['id']}"
    assert (await client.get(url, headers=reader)).status_code == 200
    assert (await client.get("/v1/sla-policies", headers=reader)).status_code == 200
    assert_problem(await client.get(url, headers=stranger), 403, "missing_scope")
    assert_problem(await client.get("/v1/cases", headers=stranger), 403, "missing_scope")
    assert_problem(
        await client.post("/v1/cases", json=case_body(customer["id"]), headers=reader),
        403,
        "missing_scope",
    )
    assert_problem(
        await client.patch(url, json={"assignee": "x"}, headers=reader), 403, "missing_scope"
    )
    assert_problem(
        await client.post(f"{url}/transitions", json={"to": "in_progress"}, headers=reader),
        403,
        "missing_scope",
    )
    assert (
        await client.post("/v1/cases", json=case_body(customer["id"]), headers=writer)
    ).status_code == 201
    moved = await client.post(f"{url}/transitions", json={"to": "in_progress"}, headers=writer)
    assert moved.status_code == 200
    # Policies are changed by admins only.
    assert_problem(
        await client.put(
            "/v1/sla-policies/low",
            json={"first_response_minutes": 60, "resolution_minutes": 120},
            headers=writer,
        ),
        403,
        "missing_scope",
    )


async def test_idempotent_open(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = case_body(customer["id"])
    headers = {"Idempotency-Key": "open-1"}
    first = await client.post("/v1/cases", json=body, headers=headers)
    again = await client.post("/v1/cases", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await events_of("case.opened")) == 1


async def test_a_resolved_case_still_reads_and_lists(client: httpx.AsyncClient) -> None:
    case = await case_in(client, CaseStatus.RESOLVED)
    listed = (await client.get("/v1/cases", params={"status": "resolved"})).json()["data"]
    assert [c["id"] for c in listed] == [case["id"]]
    assert (await move(client, case["id"], CaseStatus.CLOSED)).json()["status"] == "closed"
