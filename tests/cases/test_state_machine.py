"""The state machine, walked from its one table (app.cases.enums.TRANSITIONS): every (from, to)
pair through the API, the reopen window, concurrent moves, the history and the events."""

import asyncio
import itertools
from datetime import timedelta

import httpx2 as httpx
import pytest
import time_machine

from app.cases.enums import TRANSITIONS, CaseStatus
from app.core import clock
from tests.cases.helpers import RESOLUTION, case_in, events_of, move
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import KeyFactory, bearer

PAIRS = list(itertools.product(CaseStatus, CaseStatus))


def _id(pair: tuple[CaseStatus, CaseStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_every_status_is_reachable_and_can_move() -> None:
    assert set(TRANSITIONS) == set(CaseStatus)
    for source, targets in TRANSITIONS.items():
        assert targets, source
        assert source not in targets


@pytest.mark.parametrize("pair", PAIRS, ids=_id)
async def test_each_pair_is_legal_exactly_when_the_table_says(
    client: httpx.AsyncClient, pair: tuple[CaseStatus, CaseStatus]
) -> None:
    source, target = pair
    case = await case_in(client, source)
    assert case["status"] == source.value
    response = await move(client, case["id"], target)
    if target in TRANSITIONS[source]:
        assert response.status_code == 200, response.text
        moved = response.json()
        assert moved["status"] == target.value
        assert moved["version"] == case["version"] + 1
        assert response.headers["etag"] == f'"v{moved["version"]}"'
    else:
        body = assert_problem(response, 409, "illegal_transition")
        allowed = [t.value for t in TRANSITIONS[source]]
        assert body["allowed"] == allowed
        assert body["current_status"] == source.value
        for name in allowed:
            assert name in body["detail"]
        unchanged = (await client.get(f"/v1/cases/{case['id']}")).json()
        assert unchanged == case


async def test_resolution_is_required_to_resolve_and_only_then(client: httpx.AsyncClient) -> None:
    case = await case_in(client, CaseStatus.IN_PROGRESS)
    url = f"/v1/cases/{case['id']}/transitions"
    missing = await client.post(url, json={"to": "resolved"})
    assert assert_problem(missing, 422, "validation_failed")["errors"][0]["field"] == (
        "body.resolution"
    )
    stray = await client.post(url, json={"to": "waiting_customer", "resolution": RESOLUTION})
    assert_problem(stray, 422, "validation_failed")
    no_outcome = await client.post(url, json={"to": "resolved", "resolution": {"note": "x"}})
    assert_problem(no_outcome, 422, "validation_failed")
    for points in (0, -5, 1.5, "ten"):
        bad = await client.post(
            url,
            json={
                "to": "resolved",
                "resolution": {"outcome": "x", "compensation": {"points": points, "reason": "r"}},
            },
        )
        assert_problem(bad, 422, "validation_failed")
    assert_problem(await client.post(url, json={"to": "lost"}), 422, "validation_failed")


async def test_resolving_records_resolution_compensation_and_a_survey(
    client: httpx.AsyncClient,
) -> None:
    case = await case_in(client, CaseStatus.IN_PROGRESS)
    resolution = {**RESOLUTION, "compensation": {"points": 300, "reason": "Late parcel"}}
    response = await move(
        client, case["id"], CaseStatus.RESOLVED, resolution=resolution, reason="Done"
    )
    assert response.status_code == 200, response.text
    resolved = response.json()
    assert resolved["resolution"] == resolution
    assert resolved["resolved_at"] is not None
    [changed] = [
        e
        for e in await events_of("case.status_changed")
        if e["changes"] == {"status": ["in_progress", "resolved"]}
    ]
    assert changed["data"]["reason"] == "Done"
    assert changed["data"]["status"] == "resolved"
    [event] = await events_of("case.resolved")
    assert event["data"]["resolution"] == resolution
    survey = event["data"]["survey"]
    assert isinstance(survey["token"], str)
    assert len(survey["token"]) > 20
    assert survey["expires_at"]
    # The token is a one-time survey link of this case (helper C's feedback domain).
    answered = await client.get(f"/v1/feedback/surveys/{survey['token']}")
    assert answered.status_code == 200, answered.text


async def test_no_survey_when_not_requested(client: httpx.AsyncClient) -> None:
    case = await case_in(client, CaseStatus.OPEN)
    response = await move(client, case["id"], CaseStatus.RESOLVED, request_survey=False)
    assert response.status_code == 200, response.text
    [event] = await events_of("case.resolved")
    assert event["data"]["survey"] is None


async def test_history_names_every_move_and_its_actor(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    case = await case_in(client, CaseStatus.OPEN)
    agent = bearer(await make_key("cases:write", name="desk-7"))
    await client.post(
        f"/v1/cases/{case['id']}/transitions",
        json={"to": "waiting_customer", "reason": "Asked for a photo"},
        headers=agent,
    )
    await move(client, case["id"], CaseStatus.IN_PROGRESS)
    await move(client, case["id"], CaseStatus.RESOLVED)
    history = (await client.get(f"/v1/cases/{case['id']}/transitions")).json()["data"]
    assert [(t["from_status"], t["to_status"]) for t in history] == [
        (None, "open"),
        ("open", "waiting_customer"),
        ("waiting_customer", "in_progress"),
        ("in_progress", "resolved"),
    ]
    assert history[1]["actor"] == "desk-7"
    assert history[1]["reason"] == "Asked for a photo"
    assert history[2]["actor"] == "test"
    assert all(t["actor_key_id"] for t in history)
    page = (await client.get(f"/v1/cases/{case['id']}/transitions", params={"limit": 3})).json()
    assert page["has_more"] is True
    changes = [e["changes"]["status"] for e in await events_of("case.status_changed")]
    assert changes == [
        ["open", "waiting_customer"],
        ["waiting_customer", "in_progress"],
        ["in_progress", "resolved"],
    ]


@pytest.mark.parametrize("done", [CaseStatus.RESOLVED, CaseStatus.CLOSED])
async def test_reopen_within_the_window(client: httpx.AsyncClient, done: CaseStatus) -> None:
    with time_machine.travel(clock.now(), tick=False) as traveller:
        case = await case_in(client, done)
        traveller.shift(timedelta(days=29, hours=23))
        response = await move(client, case["id"], CaseStatus.OPEN, reason="Broken again")
        assert response.status_code == 200, response.text
        reopened = response.json()
    assert reopened["status"] == "open"
    assert reopened["reopen_count"] == 1
    assert reopened["resolved_at"] is None
    assert reopened["closed_at"] is None
    assert reopened["resolution"] is None
    assert reopened["resolution_seconds"] is None
    assert reopened["sla_clock_started_at"] is not None
    # The first response (the resolution answered the customer) stays met.
    assert reopened["first_responded_at"] == case["first_responded_at"]
    history = (await client.get(f"/v1/cases/{case['id']}/transitions")).json()["data"]
    assert (history[-1]["from_status"], history[-1]["to_status"]) == (done.value, "open")
    assert len(history) == len(case_history_steps(done)) + 2


def case_history_steps(done: CaseStatus) -> list[CaseStatus]:
    return (
        [CaseStatus.RESOLVED]
        if done == CaseStatus.RESOLVED
        else [
            CaseStatus.RESOLVED,
            CaseStatus.CLOSED,
        ]
    )


@pytest.mark.parametrize("done", [CaseStatus.RESOLVED, CaseStatus.CLOSED])
async def test_reopen_after_the_window_is_409(client: httpx.AsyncClient, done: CaseStatus) -> None:
    with time_machine.travel(clock.now(), tick=False) as traveller:
        case = await case_in(client, done)
        traveller.shift(timedelta(days=30, seconds=1))
        response = await move(client, case["id"], CaseStatus.OPEN)
    assert_problem(response, 409, "reopen_window_expired")
    assert (await client.get(f"/v1/cases/{case['id']}")).json()["status"] == done.value


async def test_concurrent_resolves_one_wins(client: httpx.AsyncClient) -> None:
    case = await case_in(client, CaseStatus.IN_PROGRESS)
    responses = await asyncio.gather(
        *(move(client, case["id"], CaseStatus.RESOLVED) for _ in range(2))
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    [lost] = [r for r in responses if r.status_code == 409]
    assert assert_problem(lost, 409, "illegal_transition")["allowed"] == ["closed", "open"]
    assert len(await events_of("case.resolved")) == 1
    history = (await client.get(f"/v1/cases/{case['id']}/transitions")).json()["data"]
    assert [t["to_status"] for t in history].count("resolved") == 1


async def test_unknown_case_is_404(client: httpx.AsyncClient) -> None:
    url = "/v1/cases/0193a1c0-7e57-7b1c-9d2e-5a6b7c8d9e0f"
    assert_problem(
        await client.post(f"{url}/transitions", json={"to": "in_progress"}), 404, "case_not_found"
    )
    assert_problem(await client.get(f"{url}/transitions"), 404, "case_not_found")
