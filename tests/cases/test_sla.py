"""SLA deadlines with a moved clock (time-machine, no sleeping): business hours, weekends, DST, the
pause in waiting_customer, priority changes, responses, and the breach job."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import time_machine

from app.cases import service, tasks
from app.cases.enums import CaseStatus
from app.db import unit_of_work
from tests.cases.helpers import events_of, move, put_policy
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import create_customer, open_case

SHANGHAI_WORKDAYS = {
    "first_response_minutes": 240,
    "resolution_minutes": 1440,
    "time_zone": "Asia/Shanghai",
    "weekdays": [1, 2, 3, 4, 5],
    "business_start_minute": 540,
    "business_end_minute": 1080,
}
# Monday 2 March 2026, 09:00 UTC.
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def utc(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _open_at(client: httpx.AsyncClient, at: datetime, **overrides: Any) -> dict[str, Any]:
    customer = await create_customer(client)
    with time_machine.travel(at, tick=False):
        return await open_case(client, customer["id"], **overrides)


async def _respond(case: dict[str, Any], at: datetime) -> None:
    async with unit_of_work() as conn:
        await service.note_response(
            conn, customer_id=uuid.UUID(case["customer_id"]), case_id=uuid.UUID(case["id"]), at=at
        )


async def _run_job_at(at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        await tasks.mark_sla_breaches({})


async def _get(client: httpx.AsyncClient, case: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/v1/cases/{case['id']}")).json()
    return body


async def test_deadlines_skip_the_weekend_and_closed_hours(client: httpx.AsyncClient) -> None:
    await put_policy(client, "normal", **SHANGHAI_WORKDAYS)
    # Friday 16:00 in Shanghai: 2 h left that day, the rest from Monday 09:00.
    friday = await _open_at(client, datetime.fromisoformat("2026-03-06T16:00:00+08:00"))
    assert friday["first_response_due_at"] == utc("2026-03-09T11:00:00+08:00")
    # 24 business hours: Fri 2 + Mon 9 + Tue 9 + Wed 4.
    assert friday["resolution_due_at"] == utc("2026-03-11T13:00:00+08:00")
    # Saturday evening: the clock starts on Monday at 09:00.
    saturday = await _open_at(client, datetime.fromisoformat("2026-03-07T20:00:00+08:00"))
    assert saturday["first_response_due_at"] == utc("2026-03-09T13:00:00+08:00")
    # Monday 07:00, before opening hours: the same.
    early = await _open_at(client, datetime.fromisoformat("2026-03-09T07:00:00+08:00"))
    assert early["first_response_due_at"] == utc("2026-03-09T13:00:00+08:00")


async def test_deadlines_across_a_dst_change(client: httpx.AsyncClient) -> None:
    await put_policy(
        client,
        "high",
        first_response_minutes=240,
        resolution_minutes=600,
        time_zone="Europe/Berlin",
        weekdays=[1, 2, 3, 4, 5],
        business_start_minute=540,
        business_end_minute=1020,
    )
    # Friday 27 March 2026, 16:00 CET (UTC+1); summer time starts on Sunday 29 March.
    case = await _open_at(
        client, datetime.fromisoformat("2026-03-27T16:00:00+01:00"), priority="high"
    )
    # 1 h on Friday, 3 h on Monday from 09:00 CEST (UTC+2): 12:00 CEST = 10:00 UTC.
    assert case["first_response_due_at"] == "2026-03-30T10:00:00Z"
    # 10 h: 1 on Friday, 8 on Monday, 1 on Tuesday: 10:00 CEST.
    assert case["resolution_due_at"] == "2026-03-31T08:00:00Z"
    # Around the clock, a day with the change has 23 hours: business time is real time.
    await put_policy(
        client,
        "low",
        first_response_minutes=1440,
        resolution_minutes=2880,
        time_zone="Europe/Berlin",
    )
    low = await _open_at(
        client, datetime.fromisoformat("2026-03-28T12:00:00+01:00"), priority="low"
    )
    assert low["first_response_due_at"] == "2026-03-29T11:00:00Z"  # 13:00 CEST


async def test_waiting_for_the_customer_pauses_the_clock(client: httpx.AsyncClient) -> None:
    # The seeded normal policy: 8 h and 72 h, around the clock.
    case = await _open_at(client, MONDAY)
    with time_machine.travel(MONDAY, tick=False) as traveller:
        traveller.shift(timedelta(hours=1))
        paused = (await move(client, case["id"], CaseStatus.WAITING_CUSTOMER)).json()
        assert paused["first_response_due_at"] is None
        assert paused["resolution_due_at"] is None
        assert paused["sla_clock_started_at"] is None
        assert paused["sla_consumed_seconds"] == 3600
        traveller.shift(timedelta(hours=10))
        resumed = (await move(client, case["id"], CaseStatus.IN_PROGRESS)).json()
        now = MONDAY + timedelta(hours=11)
        assert resumed["sla_clock_started_at"] == now.isoformat().replace("+00:00", "Z")
        assert resumed["first_response_due_at"] == (now + timedelta(hours=7)).isoformat().replace(
            "+00:00", "Z"
        )
        assert resumed["resolution_due_at"] == (now + timedelta(hours=71)).isoformat().replace(
            "+00:00", "Z"
        )
        traveller.shift(timedelta(hours=2))
        resolved = (await move(client, case["id"], CaseStatus.RESOLVED)).json()
    # 1 h before the pause, 2 h after it.
    assert resolved["resolution_seconds"] == 3 * 3600
    # Resolving answered the customer: the first response, with the same business time.
    assert resolved["first_response_seconds"] == 3 * 3600
    assert resolved["first_response_due_at"] == resumed["first_response_due_at"]
    assert resolved["sla_clock_started_at"] is None
    # Nobody missed anything: the job flags nothing, even days later.
    await _run_job_at(MONDAY + timedelta(days=10))
    assert await events_of("case.sla_breached") == []


async def test_a_priority_change_keeps_the_time_used(client: httpx.AsyncClient) -> None:
    case = await _open_at(client, MONDAY)  # normal: 8 h to the first response
    with time_machine.travel(MONDAY + timedelta(hours=2), tick=False):
        response = await client.patch(f"/v1/cases/{case['id']}", json={"priority": "high"})
    high = response.json()
    # high: 4 h and 24 h from the opening, the 2 h used counted.
    assert high["first_response_due_at"] == "2026-03-02T13:00:00Z"
    assert high["resolution_due_at"] == "2026-03-03T09:00:00Z"
    assert high["sla_consumed_seconds"] == 7200
    [event] = await events_of("case.updated")
    assert event["changes"]["priority"] == ["normal", "high"]
    assert event["changes"]["first_response_due_at"] == [
        "2026-03-02T17:00:00Z",
        "2026-03-02T13:00:00Z",
    ]
    # urgent (1 h) when 3 h are used: due at once, and the job flags it.
    with time_machine.travel(MONDAY + timedelta(hours=3), tick=False):
        urgent = (await client.patch(f"/v1/cases/{case['id']}", json={"priority": "urgent"})).json()
    assert urgent["first_response_due_at"] == "2026-03-02T12:00:00Z"
    await _run_job_at(MONDAY + timedelta(hours=3, minutes=1))
    [breach] = await events_of("case.sla_breached")
    assert breach["data"]["sla"] == "first_response"


async def test_a_late_response_is_a_breach_even_if_the_job_runs_later(
    client: httpx.AsyncClient,
) -> None:
    late = await _open_at(client, MONDAY)
    on_time = await _open_at(client, MONDAY)
    await _respond(on_time, MONDAY + timedelta(hours=7))
    with time_machine.travel(MONDAY + timedelta(hours=9), tick=False):
        await _respond(late, MONDAY + timedelta(hours=9))
        # A second response changes nothing.
        await _respond(on_time, MONDAY + timedelta(hours=9))
    assert (await _get(client, on_time))["first_response_seconds"] == 7 * 3600
    assert (await _get(client, late))["first_response_seconds"] == 9 * 3600
    await _run_job_at(MONDAY + timedelta(hours=10))
    breaches = await events_of("case.sla_breached")
    assert [(b["data"]["id"], b["data"]["sla"]) for b in breaches] == [
        (late["id"], "first_response")
    ]
    assert breaches[0]["data"]["due_at"] == "2026-03-02T17:00:00+00:00"
    flagged = await _get(client, late)
    assert flagged["first_response_breached_at"] == "2026-03-02T19:00:00Z"
    assert flagged["resolution_breached_at"] is None
    # Filtered as breached.
    listed = (await client.get("/v1/cases", params={"breached": "true"})).json()["data"]
    assert [c["id"] for c in listed] == [late["id"]]
    # The job again: nothing new.
    await _run_job_at(MONDAY + timedelta(hours=11))
    assert len(await events_of("case.sla_breached")) == 1


async def test_an_unmet_deadline_is_flagged_once_it_passes(client: httpx.AsyncClient) -> None:
    case = await _open_at(client, MONDAY)
    await _run_job_at(MONDAY + timedelta(hours=7, minutes=59))
    assert await events_of("case.sla_breached") == []
    await _run_job_at(MONDAY + timedelta(hours=8, minutes=1))
    [breach] = await events_of("case.sla_breached")
    assert breach["data"]["id"] == case["id"]
    assert breach["data"]["sla"] == "first_response"
    assert breach["data"]["first_response_breached_at"] == "2026-03-02T17:01:00Z"


async def test_two_job_runs_at_once_flag_each_breach_once(client: httpx.AsyncClient) -> None:
    cases = [await _open_at(client, MONDAY) for _ in range(6)]
    with time_machine.travel(MONDAY + timedelta(days=4), tick=False):
        await asyncio.gather(tasks.mark_sla_breaches({}), tasks.mark_sla_breaches({}))
        await asyncio.gather(*(tasks.mark_sla_breaches({}) for _ in range(3)))
    breaches = await events_of("case.sla_breached")
    assert sorted((b["data"]["id"], b["data"]["sla"]) for b in breaches) == sorted(
        (c["id"], sla) for c in cases for sla in ("first_response", "resolution")
    )


async def test_reopening_restarts_the_clock_with_the_time_used(client: httpx.AsyncClient) -> None:
    case = await _open_at(client, MONDAY)
    with time_machine.travel(MONDAY + timedelta(hours=5), tick=False) as traveller:
        await move(client, case["id"], CaseStatus.RESOLVED)
        traveller.shift(timedelta(days=2))
        reopened = (await move(client, case["id"], CaseStatus.OPEN)).json()
    assert reopened["sla_consumed_seconds"] == 5 * 3600
    reopened_at = MONDAY + timedelta(days=2, hours=5)
    # 72 h target, 5 h used: 67 h from the reopening.
    assert reopened["resolution_due_at"] == (reopened_at + timedelta(hours=67)).isoformat().replace(
        "+00:00", "Z"
    )


async def test_sla_policies_read_and_replace(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/v1/sla-policies")).json()["data"]
    assert [p["priority"] for p in listed] == ["urgent", "high", "normal", "low"]
    assert listed[0]["first_response_minutes"] == 60
    one = await client.get("/v1/sla-policies/normal")
    assert one.headers["etag"] == '"v1"'
    assert_problem(await client.get("/v1/sla-policies/asap"), 422, "validation_failed")
    stale = await client.put(
        "/v1/sla-policies/normal",
        json={"first_response_minutes": 60, "resolution_minutes": 120},
        headers={"If-Match": '"v7"'},
    )
    assert_problem(stale, 412, "version_mismatch")
    replaced = await client.put(
        "/v1/sla-policies/normal",
        json={**SHANGHAI_WORKDAYS, "weekdays": [5, 1, 3]},
        headers={"If-Match": '"v1"'},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["etag"] == '"v2"'
    assert replaced.json()["weekdays"] == [1, 3, 5]
    assert (await client.get("/v1/sla-policies/normal")).json() == replaced.json()


async def test_sla_policy_validation(client: httpx.AsyncClient) -> None:
    good = {"first_response_minutes": 60, "resolution_minutes": 120}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"time_zone": "Mars/Olympus"}, "body.time_zone"),
        ({"time_zone": "../../etc/passwd"}, "body.time_zone"),
        ({"time_zone": "Europe/Berlin\u0000"}, "body.time_zone"),
        ({"weekdays": []}, "body.weekdays"),
        ({"weekdays": [1, 1]}, "body.weekdays"),
        ({"weekdays": [0]}, "body.weekdays"),
        ({"weekdays": [8]}, "body.weekdays"),
        ({"business_start_minute": 540}, "body.business_end_minute"),
        ({"business_end_minute": 600}, "body.business_start_minute"),
        ({"business_start_minute": 600, "business_end_minute": 600}, "body.business_end_minute"),
        ({"business_start_minute": -1, "business_end_minute": 600}, "body.business_start_minute"),
        ({"business_start_minute": 0, "business_end_minute": 1441}, "body.business_end_minute"),
        ({"first_response_minutes": 0}, "body.first_response_minutes"),
        ({"resolution_minutes": 365 * 1440 + 1}, "body.resolution_minutes"),
        ({"first_response_minutes": 200}, "body.first_response_minutes"),
        (
            {
                "resolution_minutes": 365 * 1440,
                "weekdays": [1],
                "business_start_minute": 0,
                "business_end_minute": 1,
            },
            "body.resolution_minutes",
        ),
    ]
    for change, field in cases:
        response = await client.put("/v1/sla-policies/low", json={**good, **change})
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["field"].startswith(field), (change, body)
    # The longest target, around the clock: fine.
    whole_year = {"first_response_minutes": 1, "resolution_minutes": 365 * 1440}
    assert (await client.put("/v1/sla-policies/low", json=whole_year)).status_code == 200
