"""Refreshes: queued with their job, one at a time, progress per step, failure, orphans left by a
dead process, the schedule, scopes, REST and GraphQL. The steps of other engineers are replaced by
stand-ins here (tests/analytics/test_end_to_end.py runs the real ones)."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx2 as httpx
import pytest
from sqlalchemy import text

from app.analytics import refresh, repository, service, tasks
from app.core import clock
from app.db import read_connection, unit_of_work
from tests.analytics.conftest import AS_OF
from tests.fixtures.api import assert_problem, error_codes, gql
from tests.fixtures.factories import KeyFactory, bearer

Step = Callable[..., Awaitable[dict[str, Any]]]


def stand_in(figures: dict[str, Any] | None = None) -> Step:
    async def step(*, as_of: date, refresh_id: uuid.UUID | None) -> dict[str, Any]:
        return dict(figures or {"as_of": as_of.isoformat()})

    return step


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Step]]:
    """The metrics step, and stand-ins for the other two (replace them to change behaviour)."""
    replaced: list[tuple[str, Step]] = [
        ("metrics", refresh.refresh),
        ("predictions", stand_in({"customers": 0})),
        ("recommendations", stand_in({"pairs": 0})),
    ]
    monkeypatch.setattr(refresh, "STEPS", replaced)
    return replaced


async def queued_jobs() -> list[dict[str, Any]]:
    async with read_connection() as conn:
        rows = await conn.execute(text("SELECT entrypoint, payload FROM pgqueuer"))
        return [dict(row._mapping) for row in rows]


async def test_a_refresh_is_queued_run_and_one_at_a_time(
    client: httpx.AsyncClient, steps: list[tuple[str, Step]]
) -> None:
    response = await client.post("/v1/analytics/refresh", json={"as_of": AS_OF.isoformat()})
    assert response.status_code == 202, response.text
    queued = response.json()
    assert response.headers["location"] == f"/v1/analytics/refreshes/{queued['id']}"
    assert queued["status"] == "queued"
    assert queued["as_of"] == AS_OF.isoformat()
    assert (queued["steps_done"], queued["steps_total"], queued["step"]) == (0, 3, None)
    assert queued["requested_by"] == "test"
    [job] = await queued_jobs()
    assert job["entrypoint"] == "analytics.refresh"
    assert job["payload"] == f'{{"refresh_id":"{queued["id"]}"}}'.encode()

    busy = await client.post("/v1/analytics/refresh", json={})
    assert assert_problem(busy, 409, "refresh_in_progress")["refresh_id"] == queued["id"]

    await tasks.run_refresh({"refresh_id": queued["id"]})
    done = (await client.get(f"/v1/analytics/refreshes/{queued['id']}")).json()
    assert done["status"] == "succeeded"
    assert (done["steps_done"], done["step"], done["error"]) == (3, "recommendations", None)
    assert set(done["figures"]) == {"metrics", "predictions", "recommendations"}
    assert done["figures"]["predictions"]["customers"] == 0
    assert all(f["seconds"] >= 0 for f in done["figures"].values())
    assert done["figures"]["metrics"]["customers"] == 0
    assert done["started_at"] <= done["finished_at"]
    # A run of a refresh that is not queued does nothing.
    assert await refresh.run(uuid.UUID(queued["id"])) is None

    again = await client.post("/v1/analytics/refresh")  # no body: today
    assert again.status_code == 202, again.text
    assert again.json()["as_of"] == clock.now().date().isoformat()


async def test_progress_is_visible_while_it_runs(
    client: httpx.AsyncClient, steps: list[tuple[str, Step]]
) -> None:
    seen: list[tuple[str, str, int]] = []

    async def watching(*, as_of: date, refresh_id: uuid.UUID | None) -> dict[str, Any]:
        found = (await client.get(f"/v1/analytics/refreshes/{refresh_id}")).json()
        seen.append((found["status"], found["step"], found["steps_done"]))
        assert set(found["figures"]) == {"metrics"}
        return {"watched": True}

    steps[1] = ("predictions", watching)
    created = (await client.post("/v1/analytics/refresh", json={})).json()
    assert await refresh.run(uuid.UUID(created["id"])) == "succeeded"
    assert seen == [("running", "predictions", 1)]


async def test_a_failing_step_fails_the_refresh(
    client: httpx.AsyncClient, steps: list[tuple[str, Step]]
) -> None:
    async def failing(*, as_of: date, refresh_id: uuid.UUID | None) -> dict[str, Any]:
        raise RuntimeError("boom")

    steps[2] = ("recommendations", failing)
    created = (await client.post("/v1/analytics/refresh", json={})).json()
    await tasks.run_refresh({"refresh_id": created["id"]})
    failed = (await client.get(f"/v1/analytics/refreshes/{created['id']}")).json()
    assert failed["status"] == "failed"
    assert failed["error"] == "recommendations: RuntimeError: boom"
    assert (failed["steps_done"], failed["step"]) == (2, "recommendations")
    assert failed["finished_at"] is not None
    # It no longer blocks the next one.
    assert (await client.post("/v1/analytics/refresh", json={})).status_code == 202


async def _insert_refresh(status: str, requested_at: Any) -> uuid.UUID:
    refresh_id = uuid.uuid4()
    async with unit_of_work() as conn:
        await conn.execute(
            text(
                "INSERT INTO analytics_refreshes (id, status, as_of, requested_by, requested_at, "
                "steps_total) VALUES (:id, :status, :as_of, 'test', :at, 3)"
            ),
            {"id": refresh_id, "status": status, "as_of": AS_OF, "at": requested_at},
        )
    return refresh_id


async def test_orphans_are_failed_by_the_next_request(
    client: httpx.AsyncClient, database_url: str, steps: list[tuple[str, Step]]
) -> None:
    # Running, and its process holds the refresh lock: alive, so the next request waits its turn.
    holder = await asyncpg.connect(database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", repository.REFRESH_LOCK_KEY)
        alive = await _insert_refresh("running", clock.now())
        busy = await client.post("/v1/analytics/refresh", json={})
        assert assert_problem(busy, 409, "refresh_in_progress")["refresh_id"] == str(alive)
    finally:
        await holder.close()  # the process dies: its session, and the lock, go
    accepted = await client.post("/v1/analytics/refresh", json={})
    assert accepted.status_code == 202, accepted.text
    orphan = (await client.get(f"/v1/analytics/refreshes/{alive}")).json()
    assert orphan["status"] == "failed"
    assert orphan["error"] == "abandoned: the process running it stopped"

    # Queued, and no worker started it within the limit: its job is taken as lost.
    await tasks.run_refresh({"refresh_id": accepted.json()["id"]})
    stale = await _insert_refresh("queued", clock.now() - service.QUEUED_LIMIT - timedelta(1))
    assert (await client.post("/v1/analytics/refresh", json={})).status_code == 202
    lost = (await client.get(f"/v1/analytics/refreshes/{stale}")).json()
    assert (lost["status"], lost["error"]) == (
        "failed",
        "abandoned: no worker started it in time",
    )
    # A late job of a failed refresh does nothing.
    assert await refresh.run(stale) is None


async def test_the_schedule_refreshes_as_of_today_unless_one_is_active(
    client: httpx.AsyncClient, steps: list[tuple[str, Step]]
) -> None:
    await tasks.scheduled_refresh({})
    listed = (await client.get("/v1/analytics/refreshes")).json()["data"]
    assert [(r["requested_by"], r["status"], r["as_of"]) for r in listed] == [
        ("schedule", "succeeded", clock.now().date().isoformat())
    ]
    active = (await client.post("/v1/analytics/refresh", json={})).json()
    await tasks.scheduled_refresh({})
    listed = (await client.get("/v1/analytics/refreshes")).json()["data"]
    assert next(r["id"] for r in listed) == active["id"]
    assert len(listed) == 2
    assert "analytics.scheduled_refresh" in tasks.SCHEDULES


async def test_listing_is_newest_first_and_pages(
    client: httpx.AsyncClient, steps: list[tuple[str, Step]]
) -> None:
    ids = []
    for _ in range(3):
        created = (await client.post("/v1/analytics/refresh", json={})).json()
        await tasks.run_refresh({"refresh_id": created["id"]})
        ids.append(created["id"])
    first = (await client.get("/v1/analytics/refreshes", params={"limit": 2})).json()
    assert [r["id"] for r in first["data"]] == ids[::-1][:2]
    assert first["has_more"]
    rest = (
        await client.get(
            "/v1/analytics/refreshes", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [r["id"] for r in rest["data"]] == ids[:1]
    assert not rest["has_more"]
    assert_problem(
        await client.get(f"/v1/analytics/refreshes/{uuid.uuid4()}"), 404, "refresh_not_found"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"as_of": "2999-01-01"}, "body.as_of"),
        ({"as_of": "1969-12-31"}, "body.as_of"),
        ({"as_of": "not a date"}, "body.as_of"),
        ({"as_of": "2026-06-30", "extra": 1}, "body.extra"),
    ],
)
async def test_bad_bodies(client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(
        await client.post("/v1/analytics/refresh", json=body), 422, "validation_failed"
    )
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_scopes(
    anon: httpx.AsyncClient, make_key: KeyFactory, steps: list[tuple[str, Step]]
) -> None:
    reader = bearer(await make_key("analytics:read"))
    refresher = bearer(await make_key("analytics:refresh", name="ops"))
    other = bearer(await make_key("customers:read"))
    assert_problem(
        await anon.post("/v1/analytics/refresh", json={}, headers=reader), 403, "missing_scope"
    )
    created = await anon.post("/v1/analytics/refresh", json={}, headers=refresher)
    assert created.status_code == 202
    assert created.json()["requested_by"] == "ops"
    path = f"/v1/analytics/refreshes/{created.json()['id']}"
    for headers in (reader, refresher):
        assert (await anon.get(path, headers=headers)).status_code == 200
        assert (await anon.get("/v1/analytics/refreshes", headers=headers)).status_code == 200
    assert_problem(await anon.get(path, headers=other), 403, "missing_scope")
    assert_problem(await anon.get(path), 401, "unauthorized")


async def test_graphql(client: httpx.AsyncClient, steps: list[tuple[str, Step]]) -> None:
    mutation = (
        "mutation($asOf: Date) { refreshAnalytics(asOf: $asOf) "
        "{ refresh { id status asOf stepsTotal } } }"
    )
    created = await gql(client, mutation, {"asOf": AS_OF.isoformat()})
    refresh_out = created["data"]["refreshAnalytics"]["refresh"]
    assert (refresh_out["status"], refresh_out["asOf"], refresh_out["stepsTotal"]) == (
        "QUEUED",
        AS_OF.isoformat(),
        3,
    )
    busy = await gql(client, mutation, {"asOf": None})
    assert error_codes(busy) == ["refresh_in_progress"]
    assert busy["errors"][0]["extensions"]["refresh_id"] == refresh_out["id"]
    await tasks.run_refresh({"refresh_id": refresh_out["id"]})
    query = "query($id: ID!) { analyticsRefresh(id: $id) { status stepsDone figures } }"
    read = await gql(client, query, {"id": refresh_out["id"]})
    assert read["data"]["analyticsRefresh"]["status"] == "SUCCEEDED"
    assert read["data"]["analyticsRefresh"]["stepsDone"] == 3
    missing = await gql(client, query, {"id": str(uuid.uuid4())})
    assert missing["data"]["analyticsRefresh"] is None
    future = await gql(client, mutation, {"asOf": "2999-01-01"})
    assert error_codes(future) == ["validation_failed"]
    bad_id = await gql(client, query, {"id": "nope"})
    assert error_codes(bad_id) == ["invalid_id"]
