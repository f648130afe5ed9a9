"""Segments over REST: dynamic membership kept in line with the rule (one event per real change,
none on a no-op refresh), history by ``as_of``, static members, preview, errors and scopes."""

import asyncio
import csv
import io
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
from sqlalchemy import text

from app.db import read_connection
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import KeyFactory, bearer, create_customer

IN_CN = {"field": "country", "op": "eq", "value": "CN"}


async def _segment_events() -> list[tuple[str, str, Any]]:
    """Every segment event: (type, customer_id, data), in the order written."""
    async with read_connection() as conn:
        rows = await conn.execute(
            text(
                "SELECT type, customer_id, data FROM events WHERE type LIKE 'segment.%' "
                "ORDER BY customer_id, sequence"
            )
        )
        return [(row.type, str(row.customer_id), row.data) for row in rows]


async def _members(client: httpx.AsyncClient, segment_id: str, **params: str) -> set[str]:
    response = await client.get(f"/v1/segments/{segment_id}/members", params=params)
    assert response.status_code == 200, response.text
    return {m["customer_id"] for m in response.json()["data"]}


async def test_a_dynamic_segment_follows_its_rule(client: httpx.AsyncClient) -> None:
    cn = [await create_customer(client, country="CN") for _ in range(3)]
    de = await create_customer(client, country="DE")
    response = await client.post(
        "/v1/segments", json={"name": "China", "rule": IN_CN, "description": "CN"}
    )
    assert response.status_code == 201, response.text
    segment = response.json()
    assert segment["member_count"] == 3
    assert segment["rule_version"] == 1
    assert segment["refreshed_at"] is not None
    assert response.headers["location"] == f"/v1/segments/{segment['id']}"
    assert await _members(client, segment["id"]) == {c["id"] for c in cn}
    entered = await _segment_events()
    assert sorted((t, c) for t, c, _ in entered) == sorted(
        ("segment.member_entered", c["id"]) for c in cn
    )
    assert entered[0][2]["segment_id"] == segment["id"]
    assert entered[0][2]["rule_version"] == 1

    # Nothing changed: a refresh moves no one and writes no event.
    refreshed = await client.post(f"/v1/segments/{segment['id']}/refresh")
    assert refreshed.json() == {
        "segment_id": segment["id"],
        "entered": 0,
        "exited": 0,
        "member_count": 3,
    }
    assert len(await _segment_events()) == 3

    before_move = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.01)
    moved = await client.patch(f"/v1/customers/{cn[0]['id']}", json={"country": "DE"})
    assert moved.status_code == 200, moved.text
    await client.patch(f"/v1/customers/{de['id']}", json={"country": "CN"})
    refreshed = await client.post(f"/v1/segments/{segment['id']}/refresh")
    assert (refreshed.json()["entered"], refreshed.json()["exited"]) == (1, 1)
    now_members = {cn[1]["id"], cn[2]["id"], de["id"]}
    assert await _members(client, segment["id"]) == now_members
    assert await _members(client, segment["id"], as_of=before_move) == {c["id"] for c in cn}
    changes = Counter(t for t, _, _ in await _segment_events())
    assert changes == {"segment.member_entered": 4, "segment.member_exited": 1}

    mine = await client.get(f"/v1/customers/{de['id']}/segments")
    assert [s["name"] for s in mine.json()["data"]] == ["China"]
    assert (await client.get(f"/v1/customers/{cn[0]['id']}/segments")).json()["data"] == []
    timeline = await client.get(f"/v1/customers/{cn[0]['id']}/timeline")
    kinds = [entry["kind"] for entry in timeline.json()["data"]]
    assert "segment_entered" in kinds
    assert "segment_exited" in kinds


async def test_a_new_rule_moves_the_version_and_re_evaluates(client: httpx.AsyncClient) -> None:
    tea = await create_customer(client, tags=["tea"])
    coffee = await create_customer(client, tags=["coffee"])
    rule = {"field": "tags", "op": "contains", "value": "tea"}
    segment = (await client.post("/v1/segments", json={"name": "Tea", "rule": rule})).json()
    response = await client.patch(
        f"/v1/segments/{segment['id']}",
        json={"rule": {"field": "tags", "op": "contains", "value": "coffee"}},
        headers={"If-Match": response_etag(segment)},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rule_version"] == 2
    assert await _members(client, segment["id"]) == {coffee["id"]}
    events = {(t, c): d for t, c, d in await _segment_events()}
    assert events[("segment.member_exited", tea["id"])]["rule_version"] == 1
    assert events[("segment.member_entered", coffee["id"])]["rule_version"] == 2
    stale = await client.patch(
        f"/v1/segments/{segment['id']}", json={"name": "x"}, headers={"If-Match": '"v1"'}
    )
    assert_problem(stale, 412, "version_mismatch")


def response_etag(segment: dict[str, Any]) -> str:
    return f'"v{segment["version"]}"'


async def test_static_members_are_listed_by_hand(client: httpx.AsyncClient) -> None:
    a, b = await create_customer(client), await create_customer(client)
    missing = "01936f0e-5a4b-7c3d-9e2f-000000000000"
    segment = (await client.post("/v1/segments", json={"name": "VIP", "kind": "static"})).json()
    assert segment["member_count"] == 0
    added = await client.post(
        f"/v1/segments/{segment['id']}/members",
        json={"customer_ids": [a["id"], missing, a["id"]]},
    )
    assert added.status_code == 200, added.text
    assert [r["status"] for r in added.json()["results"]] == [
        "added",
        "customer_not_found",
        "already_member",
    ]
    again = await client.post(
        f"/v1/segments/{segment['id']}/members", json={"customer_ids": [a["id"], b["id"]]}
    )
    assert [r["status"] for r in again.json()["results"]] == ["already_member", "added"]
    assert again.json()["member_count"] == 2
    removed = await client.request(
        "DELETE", f"/v1/segments/{segment['id']}/members", json={"customer_ids": [a["id"], a["id"]]}
    )
    assert [r["status"] for r in removed.json()["results"]] == ["removed", "not_member"]
    assert await _members(client, segment["id"]) == {b["id"]}
    changes = Counter((t, c) for t, c, _ in await _segment_events())
    assert changes == {
        ("segment.member_entered", a["id"]): 1,
        ("segment.member_entered", b["id"]): 1,
        ("segment.member_exited", a["id"]): 1,
    }
    assert_problem(
        await client.post(f"/v1/segments/{segment['id']}/refresh"), 409, "segment_is_static"
    )
    dynamic = (await client.post("/v1/segments", json={"name": "D", "rule": IN_CN})).json()
    response = await client.post(
        f"/v1/segments/{dynamic['id']}/members", json={"customer_ids": [a["id"]]}
    )
    assert_problem(response, 409, "segment_is_dynamic")


async def test_preview_saves_nothing(client: httpx.AsyncClient) -> None:
    made = [await create_customer(client, country="CN") for _ in range(3)]
    response = await client.post("/v1/segments/preview", json={"rule": IN_CN, "sample": 2})
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 3
    assert [c["id"] for c in response.json()["sample"]] == [made[2]["id"], made[1]["id"]]
    assert (await client.get("/v1/segments")).json()["data"] == []
    assert await _segment_events() == []


async def test_bad_requests_are_problems(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    await client.post("/v1/segments", json={"name": "Taken", "rule": IN_CN})
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "Taken", "rule": IN_CN}, 409, "segment_name_taken"),
        ({"name": "No rule"}, 422, "validation_failed"),
        ({"name": "Static", "kind": "static", "rule": IN_CN}, 422, "validation_failed"),
        (
            {"name": "Bad", "rule": {"field": "country", "op": "gt", "value": 1}},
            422,
            "validation_failed",
        ),
        ({"name": "\u0000", "rule": IN_CN}, 422, "validation_failed"),
        ({"name": "x" * 201, "rule": IN_CN}, 422, "validation_failed"),
    ]
    for body, status, code in cases:
        assert_problem(await client.post("/v1/segments", json=body), status, code)
    unknown = "01936f0e-5a4b-7c3d-9e2f-000000000000"
    assert_problem(await client.get(f"/v1/segments/{unknown}"), 404, "segment_not_found")
    reader = bearer(await make_key("segments:read", "customers:read"))
    response = await client.post("/v1/segments", json={"name": "R", "rule": IN_CN}, headers=reader)
    assert_problem(response, 403, "missing_scope")
    writer = bearer(await make_key("segments:write", "customers:read"))
    metrics = {"field": "metrics.order_count", "op": "gte", "value": 2}
    response = await client.post(
        "/v1/segments", json={"name": "M", "rule": metrics}, headers=writer
    )
    assert "analytics:read" in assert_problem(response, 403, "missing_scope")["detail"]
    segment = (await client.get("/v1/segments")).json()["data"][0]
    deleted = await client.delete(f"/v1/segments/{segment['id']}")
    assert deleted.status_code == 204
    assert_problem(await client.get(f"/v1/segments/{segment['id']}"), 404, "segment_not_found")


async def test_concurrent_refreshes_move_each_customer_once(client: httpx.AsyncClient) -> None:
    segment = (await client.post("/v1/segments", json={"name": "CN", "rule": IN_CN})).json()
    made = [await create_customer(client, country="CN") for _ in range(20)]
    results = await asyncio.gather(
        *(client.post(f"/v1/segments/{segment['id']}/refresh") for _ in range(6))
    )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sum(r.json()["entered"] for r in results) == 20
    changes = Counter(c for t, c, _ in await _segment_events())
    assert changes == {c["id"]: 1 for c in made}


async def test_export_streams_every_member(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    """More members than one export page (so the keyset paging is crossed), in both formats, with
    PII only for pii:read."""
    from app.segments import service

    service.EXPORT_PAGE, page = 7, service.EXPORT_PAGE
    try:
        made = [await create_customer(client, country="CN") for _ in range(17)]
        segment = (await client.post("/v1/segments", json={"name": "CN", "rule": IN_CN})).json()
        url = f"/v1/segments/{segment['id']}/members/export"
        response = await client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert sorted(line["customer_id"] for line in lines) == sorted(c["id"] for c in made)
        assert {line["email"] for line in lines} == {c["email"] for c in made}
        response = await client.get(url, params={"format": "csv"})
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0][:2] == ["customer_id", "external_id"]
        assert len(rows) == 18
        reader = bearer(await make_key("segments:read", "customers:read"))
        hidden = await client.get(url, headers=reader)
        assert {json.loads(line)["email"] for line in hidden.text.splitlines()} == {None}
        no_customers = bearer(await make_key("segments:read"))
        assert_problem(await client.get(url, headers=no_customers), 403, "missing_scope")
        assert_problem(await client.get(url, params={"format": "xml"}), 422, "validation_failed")
    finally:
        service.EXPORT_PAGE = page
