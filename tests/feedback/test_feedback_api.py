"""Feedback over REST: submitting (scales, links, agent, idempotent external ids), reading, scopes,
and the feedback.received event."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import func, select, text

from app.db import read_connection
from app.feedback.models import Feedback
from tests.feedback.helpers import insert_case, insert_interaction
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import (
    KeyFactory,
    bearer,
    create_customer,
    feedback_body,
    submit_feedback,
)


async def _events(type_: str) -> list[Any]:
    async with read_connection() as conn:
        result = await conn.execute(
            text("SELECT customer_id, data FROM events WHERE type = :t ORDER BY id"), {"t": type_}
        )
        return list(result.all())


async def _stored() -> int:
    async with read_connection() as conn:
        return int((await conn.execute(select(func.count()).select_from(Feedback))).scalar_one())


def _field_errors(response: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json().get("errors", [])}


async def test_submit_stores_the_answer_and_records_the_event(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = feedback_body(
        customer["id"],
        kind="csat",
        score=4,
        category="logistics",
        agent="wang.fang",
        submitted_at="2026-01-05T08:00:00+08:00",
    )
    response = await client.post("/v1/feedback", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/v1/feedback/{created['id']}"
    assert {k: created[k] for k in ("customer_id", "kind", "score", "category", "agent")} == {
        "customer_id": customer["id"],
        "kind": "csat",
        "score": 4,
        "category": "logistics",
        "agent": "wang.fang",
    }
    assert created["submitted_at"] == "2026-01-05T00:00:00Z"
    assert created["survey_id"] is None
    assert created["case_id"] is None
    read = await client.get(f"/v1/feedback/{created['id']}")
    assert read.status_code == 200
    assert read.json() == created
    [(customer_id, data)] = await _events("feedback.received")
    assert str(customer_id) == customer["id"]
    assert data == created


async def test_submitted_at_defaults_to_now(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    before = datetime.now(UTC)
    created = await submit_feedback(client, customer["id"])
    submitted = datetime.fromisoformat(created["submitted_at"])
    assert before <= submitted <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("kind", "score", "message"),
    [
        ("nps", 11, "less than or equal to 10"),
        ("nps", -1, "greater than or equal to 0"),
        ("csat", 0, "a CSAT score is 1 to 5"),
        ("csat", 6, "a CSAT score is 1 to 5"),
        ("ces", 0, "a CES score is 1 to 7"),
        ("ces", 8, "a CES score is 1 to 7"),
    ],
)
async def test_a_score_off_the_kinds_scale_is_422_naming_the_range(
    client: httpx.AsyncClient, kind: str, score: int, message: str
) -> None:
    customer = await create_customer(client)
    response = await client.post(
        "/v1/feedback", json=feedback_body(customer["id"], kind=kind, score=score)
    )
    assert_problem(response, 422, "validation_failed")
    assert message in _field_errors(response)["body.score"]
    assert await _stored() == 0


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"score": 4.5}, "body.score"),
        ({"score": "9"}, "body.score"),
        ({"score": True}, "body.score"),
        ({"kind": "stars"}, "body.kind"),
        ({"comment": "x" * 4001}, "body.comment"),
        ({"comment": "nul\u0000"}, "body.comment"),
        ({"category": "Logistics!"}, "body.category"),
        ({"category": "x" * 41}, "body.category"),
        ({"channel": "pigeon"}, "body.channel"),
        ({"submitted_at": "2999-01-01T00:00:00Z"}, "body.submitted_at"),
        ({"submitted_at": "2026-01-01T00:00:00"}, "body.submitted_at"),
        ({"source": None}, "body.source"),
        ({"customer_id": "not-a-uuid"}, "body.customer_id"),
        ({"unknown": 1}, "body.unknown"),
    ],
)
async def test_invalid_bodies_are_field_errors(
    client: httpx.AsyncClient, override: dict[str, Any], field: str
) -> None:
    customer = await create_customer(client)
    body = {**feedback_body(customer["id"]), **override}
    response = await client.post("/v1/feedback", json=body)
    assert_problem(response, 422, "validation_failed")
    assert field in _field_errors(response)


async def test_a_comment_of_4000_characters_and_a_past_time_are_fine(
    client: httpx.AsyncClient,
) -> None:
    customer = await create_customer(client)
    created = await submit_feedback(
        client, customer["id"], comment="好" * 4000, submitted_at="2019-03-01T12:00:00Z"
    )
    assert len(created["comment"]) == 4000
    assert created["submitted_at"] == "2019-03-01T12:00:00Z"


async def test_unknown_customer_case_and_interaction_are_422_on_their_field(
    client: httpx.AsyncClient,
) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    others_case = await insert_case(other["id"])
    others_interaction = await insert_interaction(other["id"])
    cases = [
        ({"customer_id": str(uuid.uuid4())}, "customer_not_found", "body.customer_id"),
        ({"case_id": str(others_case)}, "case_not_found", "body.case_id"),
        ({"case_id": str(uuid.uuid4())}, "case_not_found", "body.case_id"),
        (
            {"interaction_id": str(others_interaction)},
            "interaction_not_found",
            "body.interaction_id",
        ),
    ]
    for override, code, field in cases:
        response = await client.post(
            "/v1/feedback", json={**feedback_body(customer["id"]), **override}
        )
        assert_problem(response, 422, code)
        assert field in _field_errors(response)
    deleted = await create_customer(client)
    assert (await client.delete(f"/v1/customers/{deleted['id']}")).status_code == 204
    response = await client.post("/v1/feedback", json=feedback_body(deleted["id"]))
    assert_problem(response, 422, "customer_not_found")
    assert await _stored() == 0


async def test_the_agent_comes_from_the_case_then_the_interaction(
    client: httpx.AsyncClient,
) -> None:
    customer = await create_customer(client)
    case_id = await insert_case(customer["id"], assignee="case.owner")
    unassigned = await insert_case(customer["id"])
    interaction_id = await insert_interaction(customer["id"], agent="call.agent")

    async def agent(**links: Any) -> str | None:
        created = await submit_feedback(client, customer["id"], agent=None, **links)
        value: str | None = created["agent"]
        return value

    assert await agent(case_id=str(case_id)) == "case.owner"
    assert await agent(case_id=str(case_id), interaction_id=str(interaction_id)) == "case.owner"
    assert await agent(interaction_id=str(interaction_id)) == "call.agent"
    assert await agent(case_id=str(unassigned), interaction_id=str(interaction_id)) == "call.agent"
    assert await agent() is None
    given = await submit_feedback(client, customer["id"], agent="given.agent", case_id=str(case_id))
    assert given["agent"] == "given.agent"
    assert given["case_id"] == str(case_id)


async def test_the_same_source_and_external_id_is_stored_once(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = feedback_body(customer["id"], source="wjx", external_id="A-1")
    first = await client.post("/v1/feedback", json=body)
    assert first.status_code == 201
    again = await client.post("/v1/feedback", json={**body, "score": 3, "comment": "changed"})
    assert again.status_code == 200
    assert again.json() == first.json()
    # The same external id from another source is another answer.
    other_source = await client.post("/v1/feedback", json={**body, "source": "qualtrics"})
    assert other_source.status_code == 201
    assert await _stored() == 2
    assert len(await _events("feedback.received")) == 2


async def test_the_same_external_id_for_another_customer_is_409(
    client: httpx.AsyncClient,
) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    body = feedback_body(customer["id"], source="wjx", external_id="A-2")
    assert (await client.post("/v1/feedback", json=body)).status_code == 201
    response = await client.post("/v1/feedback", json={**body, "customer_id": other["id"]})
    assert_problem(response, 409, "external_id_conflict")
    assert await _stored() == 1


async def test_concurrent_submissions_of_one_external_id_store_one_answer(
    client: httpx.AsyncClient,
) -> None:
    customer = await create_customer(client)
    body = feedback_body(customer["id"], source="wjx", external_id="race-1")
    responses = await asyncio.gather(*(client.post("/v1/feedback", json=body) for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 200, 200, 201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _stored() == 1
    assert len(await _events("feedback.received")) == 1


async def test_idempotency_key_replays_the_submission(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = feedback_body(customer["id"], external_id=None, source=None)
    headers = {"Idempotency-Key": "fb-1"}
    first = await client.post("/v1/feedback", json=body, headers=headers)
    again = await client.post("/v1/feedback", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await _stored() == 1


async def test_list_filters_sorts_and_pages(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    case_id = await insert_case(customer["id"], assignee="a1")
    day = datetime(2026, 3, 1, tzinfo=UTC)
    made = [
        await submit_feedback(
            client, customer["id"], submitted_at=(day + timedelta(hours=1)).isoformat()
        ),
        await submit_feedback(
            client,
            customer["id"],
            kind="csat",
            score=2,
            category="billing",
            channel="email",
            case_id=str(case_id),
            agent=None,
            submitted_at=(day + timedelta(hours=2)).isoformat(),
        ),
        await submit_feedback(
            client,
            other["id"],
            kind="ces",
            score=6,
            submitted_at=(day + timedelta(hours=3)).isoformat(),
        ),
    ]

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/v1/feedback", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    newest_first = [f["id"] for f in reversed(made)]
    assert await ids() == newest_first
    assert await ids(sort="submitted_at") == newest_first[::-1]
    assert await ids(customer_id=customer["id"]) == [made[1]["id"], made[0]["id"]]
    assert await ids(case_id=str(case_id)) == [made[1]["id"]]
    assert await ids(kind="csat") == [made[1]["id"]]
    assert await ids(category="billing") == [made[1]["id"]]
    assert await ids(channel="email") == [made[1]["id"]]
    assert await ids(agent="a1") == [made[1]["id"]]
    after = (day + timedelta(hours=2)).isoformat()
    assert await ids(submitted_after=after) == [made[2]["id"], made[1]["id"]]
    assert await ids(submitted_before=after) == [made[0]["id"]]
    first_page = (await client.get("/v1/feedback", params={"limit": 2})).json()
    assert first_page["has_more"] is True
    rest = await client.get(
        "/v1/feedback", params={"limit": 2, "cursor": first_page["next_cursor"]}
    )
    assert [f["id"] for f in first_page["data"] + rest.json()["data"]] == newest_first
    assert_problem(
        await client.get("/v1/feedback", params={"kind": "stars"}), 422, "validation_failed"
    )
    assert_problem(
        await client.get("/v1/feedback", params={"score": "9"}), 400, "unknown_parameter"
    )


async def test_get_unknown_feedback_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"/v1/feedback/{uuid.uuid4()}"), 404, "feedback_not_found")


async def test_scopes_are_the_interaction_scopes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    customer = await create_customer(client)
    created = await submit_feedback(client, customer["id"])
    reader = bearer(await make_key("interactions:read"))
    writer = bearer(await make_key("interactions:write"))
    cases_only = bearer(await make_key("cases:write", "customers:write"))
    body = feedback_body(customer["id"])
    assert_problem(await anon.post("/v1/feedback", json=body), 401, "unauthorized")
    assert_problem(await anon.get("/v1/feedback"), 401, "unauthorized")
    assert_problem(await anon.post("/v1/feedback", json=body, headers=reader), 403, "missing_scope")
    assert_problem(await anon.get("/v1/feedback", headers=cases_only), 403, "missing_scope")
    assert_problem(
        await anon.get(f"/v1/feedback/{created['id']}", headers=cases_only), 403, "missing_scope"
    )
    assert (await anon.get("/v1/feedback", headers=reader)).status_code == 200
    assert (await anon.get(f"/v1/feedback/{created['id']}", headers=reader)).status_code == 200
    assert (await anon.post("/v1/feedback", json=body, headers=writer)).status_code == 201
    assert (await anon.get("/v1/feedback", headers=writer)).status_code == 200


async def test_feedback_is_append_only(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    created = await submit_feedback(client, customer["id"])
    for method in ("PATCH", "PUT", "DELETE"):
        response = await client.request(method, f"/v1/feedback/{created['id']}", json={})
        assert response.status_code == 405, method
