"""Survey links: issued by the service (cases call it on resolution), read and answered without an
API key (the token is the credential), answered exactly once, expired after survey_ttl_days."""

import asyncio
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pytest
import time_machine
from sqlalchemy import select, text

from app.core import clock
from app.core.config import get_settings
from app.db import read_connection
from app.feedback.models import Feedback, Survey
from app.main import create_app
from tests.feedback.helpers import insert_case, issue_survey
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import bearer, create_customer


async def _survey_row(survey_id: uuid.UUID) -> dict[str, Any]:
    async with read_connection() as conn:
        row = (await conn.execute(select(Survey).where(Survey.id == survey_id))).one()
        return dict(row._mapping)


async def _answers() -> list[dict[str, Any]]:
    async with read_connection() as conn:
        rows = await conn.execute(select(*Feedback.__table__.c))
        return [dict(r._mapping) for r in rows]


async def test_issue_survey_keeps_only_the_tokens_hash(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    case_id = await insert_case(customer["id"])
    before = clock.now()
    survey = await issue_survey(customer["id"], case_id)
    assert survey.token.startswith("srv_")
    assert len(survey.token) == 4 + 32
    ttl = timedelta(days=get_settings().survey_ttl_days)
    assert before + ttl <= survey.expires_at <= clock.now() + ttl
    async with read_connection() as conn:
        stored = (
            await conn.execute(
                text("SELECT token_hash, kind, case_id FROM surveys WHERE id = :id"),
                {"id": survey.id},
            )
        ).one()
    assert bytes(stored.token_hash) == hashlib.sha256(survey.token.encode()).digest()
    assert (stored.kind, stored.case_id) == ("csat", case_id)
    other = await issue_survey(customer["id"], case_id)
    assert other.token != survey.token


async def test_the_survey_page_needs_no_key_and_shows_nothing_personal(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    customer = await create_customer(client)
    survey = await issue_survey(customer["id"], kind="nps")
    response = await anon.get(f"/v1/feedback/surveys/{survey.token}")
    assert response.status_code == 200, response.text
    assert "authorization" not in {k.lower() for k in response.request.headers}
    assert response.json() == {
        "kind": "nps",
        "scale_min": 0,
        "scale_max": 10,
        "expires_at": survey.expires_at.isoformat().replace("+00:00", "Z"),
        "expired": False,
        "answered": False,
    }
    assert customer["id"] not in response.text
    # Rate limiting applies as on every /v1 route.
    assert "ratelimit-remaining" in response.headers


async def test_answering_stores_feedback_from_the_survey_and_its_case(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    customer = await create_customer(client)
    case_id = await insert_case(
        customer["id"], assignee="zhang.min", category="billing", channel="phone"
    )
    survey = await issue_survey(customer["id"], case_id)
    response = await anon.post(
        f"/v1/feedback/surveys/{survey.token}", json={"score": 5, "comment": "Solved fast."}
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["kind"], answer["score"], answer["comment"]) == ("csat", 5, "Solved fast.")
    assert customer["id"] not in response.text
    [stored] = await _answers()
    assert stored["customer_id"] == uuid.UUID(customer["id"])
    assert (stored["case_id"], stored["survey_id"]) == (case_id, survey.id)
    assert (stored["agent"], stored["category"], stored["channel"]) == (
        "zhang.min",
        "billing",
        "phone",
    )
    row = await _survey_row(survey.id)
    assert row["answered_at"] is not None
    assert row["feedback_id"] == stored["id"]
    page = await anon.get(f"/v1/feedback/surveys/{survey.token}")
    assert page.json()["answered"] is True
    # The answer is feedback like any other, with its event.
    listed = (await client.get("/v1/feedback", params={"case_id": str(case_id)})).json()["data"]
    assert [f["survey_id"] for f in listed] == [str(survey.id)]
    async with read_connection() as conn:
        data = (
            await conn.execute(text("SELECT data FROM events WHERE type = 'feedback.received'"))
        ).scalar_one()
    assert data["survey_id"] == str(survey.id)


async def test_a_survey_is_answered_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    customer = await create_customer(client)
    survey = await issue_survey(customer["id"])
    url = f"/v1/feedback/surveys/{survey.token}"
    assert (await anon.post(url, json={"score": 4})).status_code == 201
    assert_problem(await anon.post(url, json={"score": 1}), 409, "survey_already_answered")
    assert [a["score"] for a in await _answers()] == [4]


async def test_concurrent_answers_store_exactly_one(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    customer = await create_customer(client)
    survey = await issue_survey(customer["id"], kind="ces")
    url = f"/v1/feedback/surveys/{survey.token}"
    responses = await asyncio.gather(*(anon.post(url, json={"score": n}) for n in range(1, 8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409, 409], [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["code"] == "survey_already_answered"
    [winner] = [r.json() for r in responses if r.status_code == 201]
    assert [a["score"] for a in await _answers()] == [winner["score"]]


async def test_an_expired_survey_is_410(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    survey = await issue_survey(customer["id"])
    url = f"/v1/feedback/surveys/{survey.token}"
    with time_machine.travel(survey.expires_at - timedelta(seconds=1), tick=False):
        assert (await anon.get(url)).json()["expired"] is False
    with time_machine.travel(survey.expires_at, tick=False):
        assert (await anon.get(url)).json()["expired"] is True
        assert_problem(await anon.post(url, json={"score": 3}), 410, "survey_expired")
    assert await _answers() == []


async def test_unknown_and_malformed_tokens_are_404(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    customer = await create_customer(client)
    survey = await issue_survey(customer["id"])
    for token in ("srv_" + "A" * 32, survey.token[:-1], "not-a-token", "srv_" + "x" * 500, "%00"):
        assert_problem(await anon.get(f"/v1/feedback/surveys/{token}"), 404, "survey_not_found")
        assert_problem(
            await anon.post(f"/v1/feedback/surveys/{token}", json={"score": 3}),
            404,
            "survey_not_found",
        )
    # A key is not needed, and a key of any kind changes nothing.
    assert_problem(
        await anon.post(
            "/v1/feedback/surveys/srv_nope", json={"score": 3}, headers=bearer("kehu_wrong")
        ),
        404,
        "survey_not_found",
    )
    assert await _answers() == []


async def test_the_answer_is_checked_against_the_surveys_scale(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    customer = await create_customer(client)
    survey = await issue_survey(customer["id"])  # CSAT: 1 to 5
    url = f"/v1/feedback/surveys/{survey.token}"
    for body, field in (
        ({"score": 6}, "body.score"),
        ({"score": 0}, "body.score"),
        ({"score": "5"}, "body.score"),
        ({"comment": "no score"}, "body.score"),
        ({"score": 5, "kind": "nps"}, "body.kind"),
        ({"score": 5, "comment": "x" * 4001}, "body.comment"),
    ):
        response = await anon.post(url, json=body)
        problem = assert_problem(response, 422, "validation_failed")
        assert field in {e["field"] for e in problem["errors"]}, (body, problem)
    assert (await anon.get(url)).json()["answered"] is False


async def test_idempotency_key_replays_a_survey_answer(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    customer = await create_customer(client)
    survey = await issue_survey(customer["id"])
    url = f"/v1/feedback/surveys/{survey.token}"
    first = await anon.post(url, json={"score": 5}, headers={"Idempotency-Key": "answer-1"})
    again = await anon.post(url, json={"score": 5}, headers={"Idempotency-Key": "answer-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # The same key on another survey is another request, not a replay of this one.
    other = await issue_survey(customer["id"])
    elsewhere = await anon.post(
        f"/v1/feedback/surveys/{other.token}",
        json={"score": 2},
        headers={"Idempotency-Key": "answer-1"},
    )
    assert elsewhere.status_code == 201
    assert "idempotent-replayed" not in elsewhere.headers
    assert sorted(a["score"] for a in await _answers()) == [2, 5]


def test_the_survey_routes_are_documented_as_taking_no_key() -> None:
    document = create_app().openapi()
    for method in ("get", "post"):
        operation = document["paths"]["/v1/feedback/surveys/{token}"][method]
        assert operation["security"] == []
        assert "401" not in operation["responses"]
        assert "403" not in operation["responses"]
        assert "404" in operation["responses"]
    answer = document["paths"]["/v1/feedback/surveys/{token}"]["post"]["responses"]
    assert "survey_already_answered" in answer["409"]["description"]
    assert "survey_expired" in answer["410"]["description"]
    assert document["paths"]["/v1/feedback"]["post"]["security"] == [{"ApiKey": []}]


async def test_logs_show_a_survey_links_template_not_its_token(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A survey link's path is its credential: access lines log the route template
    (``app/api/middleware.py``), while keyed routes keep their real path."""
    from app.api import middleware

    lines: list[dict[str, Any]] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            lines.append({"event": event, **fields})

    customer = await create_customer(client)
    survey = await issue_survey(customer["id"])
    monkeypatch.setattr(middleware, "log", Recorder())
    assert (await anon.get(f"/v1/feedback/surveys/{survey.token}")).status_code == 200
    answered = await anon.post(f"/v1/feedback/surveys/{survey.token}", json={"score": 5})
    assert answered.status_code == 201, answered.text
    assert (await anon.get("/v1/feedback/surveys/srv_unknown")).status_code == 404
    assert (await client.get(f"/v1/customers/{customer['id']}")).status_code == 200
    assert [line["path"] for line in lines] == [
        "/v1/feedback/surveys/{token}",
        "/v1/feedback/surveys/{token}",
        "/v1/feedback/surveys/{token}",
        f"/v1/customers/{customer['id']}",
    ]
    assert survey.token not in repr(lines)
