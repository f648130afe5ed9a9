"""Feedback use cases, shared by REST, GraphQL and other domains: submit an answer, read answers,
issue a survey (cases call ``issue_survey`` when a case is resolved) and take its one answer.

There is no feedback scope: submitting needs ``interactions:write``, reading ``interactions:read``.
A survey is answered with its token alone (no API key): the token is the credential.
"""

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core import clock
from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import Conflict, KehuError, NotFound, ValidationFailed
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.db import Connection
from app.events import service as events
from app.feedback import repository
from app.feedback.schemas import (
    SCALES,
    SURVEY_TOKEN_PREFIX,
    FeedbackCreate,
    FeedbackFilter,
    FeedbackKind,
    FeedbackOut,
    FeedbackSort,
    SurveyAnswer,
    SurveyAnswerOut,
    SurveyOut,
    scale_problem,
)

READ_SCOPE = "interactions:read"
WRITE_SCOPE = "interactions:write"
# Past this length a path segment cannot be a token of ours (srv_ + 32 characters).
_MAX_TOKEN = 100


class SurveyExpired(KehuError):
    status, code = 410, "survey_expired"


def snapshot(answer: FeedbackOut) -> dict[str, Any]:
    """The answer as the ``feedback.received`` event carries it."""
    return answer.model_dump(mode="json")


def _field_problem(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(
        f"{message}; see errors[].",
        code=code,
        errors=[{"field": f"body.{field}", "message": message}],
    )


@dataclass(frozen=True, slots=True)
class Submitted:
    """The stored answer, and whether it was stored by this call (False: the same (source,
    external_id) had been submitted before, and this is that answer)."""

    feedback: FeedbackOut
    created: bool


async def submit_feedback(conn: Connection, caller: Caller, payload: FeedbackCreate) -> Submitted:
    caller.require(WRITE_SCOPE)
    if payload.external_id is not None and payload.source is not None:
        stored = await repository.by_external_id(conn, payload.source, payload.external_id)
        if stored is not None:
            return _resent(stored, payload)
    links = await repository.links(
        conn, payload.customer_id, payload.case_id, payload.interaction_id
    )
    if not links.customer:
        raise _field_problem(
            "customer_id", f"No customer {payload.customer_id}", "customer_not_found"
        )
    if payload.case_id is not None and not links.case:
        raise _field_problem(
            "case_id", f"No case {payload.case_id} of this customer", "case_not_found"
        )
    if payload.interaction_id is not None and not links.interaction:
        raise _field_problem(
            "interaction_id",
            f"No interaction {payload.interaction_id} of this customer",
            "interaction_not_found",
        )
    agent = payload.agent
    if agent is None:
        agent = links.case_assignee if payload.case_id is not None else None
    if agent is None and payload.interaction_id is not None:
        agent = links.interaction_agent
    now = clock.now()
    values = payload.model_dump(exclude={"submitted_at"})
    values.update(
        id=new_id(),
        agent=agent,
        survey_id=None,
        submitted_at=payload.submitted_at or now,
        created_at=now,
    )
    created = await repository.insert_feedback(conn, values)
    if created is None:
        # A concurrent request stored the same (source, external_id) first.
        assert payload.source is not None
        assert payload.external_id is not None
        stored = await repository.by_external_id(conn, payload.source, payload.external_id)
        if stored is None:  # pragma: no cover - the conflicting row cannot vanish (append-only)
            raise Conflict("The answer conflicts with one written concurrently; retry.")
        return _resent(stored, payload)
    await events.record(
        conn, "feedback.received", customer_id=created.customer_id, data=snapshot(created)
    )
    return Submitted(created, True)


def _resent(stored: FeedbackOut, payload: FeedbackCreate) -> Submitted:
    if stored.customer_id != payload.customer_id:
        raise Conflict(
            f"({payload.source!r}, {payload.external_id!r}) is already the answer of another "
            "customer.",
            code="external_id_conflict",
        )
    return Submitted(stored, False)


async def get_feedback(conn: Connection, caller: Caller, feedback_id: uuid.UUID) -> FeedbackOut:
    caller.require(READ_SCOPE)
    found = await repository.get(conn, feedback_id)
    if found is None:
        raise NotFound(f"No feedback {feedback_id}.", code="feedback_not_found")
    return found


async def find_feedback(
    conn: Connection, caller: Caller, feedback_id: uuid.UUID
) -> FeedbackOut | None:
    caller.require(READ_SCOPE)
    return await repository.get(conn, feedback_id)


async def get_feedback_many(
    conn: Connection, caller: Caller, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, FeedbackOut]:
    caller.require(READ_SCOPE)
    return {f.id: f for f in await repository.get_many(conn, ids)}


async def list_feedback(
    conn: Connection,
    caller: Caller,
    filters: FeedbackFilter,
    *,
    sort: FeedbackSort,
    limit: int,
    cursor: str | None,
) -> Page[FeedbackOut]:
    caller.require(READ_SCOPE)
    query = repository.list_query(filters, sort)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort=sort.value)
    return page.mapped(repository.feedback_from_row)


# ------------------------------------------------------------------------------------------ surveys


@dataclass(frozen=True, slots=True)
class IssuedSurvey:
    """A new survey: its token travels once (in the ``case.resolved`` event); only its SHA-256 is
    kept."""

    id: uuid.UUID
    token: str
    expires_at: datetime


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


async def issue_survey(
    conn: Connection,
    *,
    customer_id: uuid.UUID,
    case_id: uuid.UUID | None,
    kind: str = "csat",
) -> IssuedSurvey:
    """Issue a one-time survey of ``customer_id`` (about ``case_id``) in the caller's transaction;
    it can be answered once, for ``survey_ttl_days``, at ``/v1/feedback/surveys/{token}``."""
    kind = FeedbackKind(kind).value
    token = SURVEY_TOKEN_PREFIX + secrets.token_urlsafe(24)
    now = clock.now()
    survey_id = new_id()
    expires_at = now + timedelta(days=get_settings().survey_ttl_days)
    await repository.insert_survey(
        conn,
        {
            "id": survey_id,
            "customer_id": customer_id,
            "case_id": case_id,
            "kind": kind,
            "token_hash": _token_hash(token),
            "expires_at": expires_at,
            "created_at": now,
        },
    )
    return IssuedSurvey(id=survey_id, token=token, expires_at=expires_at)


def _not_found() -> NotFound:
    return NotFound("No survey has this link.", code="survey_not_found")


async def _survey(conn: Connection, token: str) -> repository.StoredSurvey:
    if not token.startswith(SURVEY_TOKEN_PREFIX) or len(token) > _MAX_TOKEN:
        raise _not_found()
    survey = await repository.survey_by_hash(conn, _token_hash(token))
    if survey is None:
        raise _not_found()
    return survey


async def get_survey(conn: Connection, token: str) -> SurveyOut:
    """What the survey page shows; the token is the credential (no API key, no scope)."""
    survey = await _survey(conn, token)
    kind = FeedbackKind(survey.kind)
    low, high = SCALES[kind]
    return SurveyOut(
        kind=kind,
        scale_min=low,
        scale_max=high,
        expires_at=survey.expires_at,
        expired=survey.answered_at is None and survey.expires_at <= clock.now(),
        answered=survey.answered_at is not None,
    )


async def answer_survey(conn: Connection, token: str, payload: SurveyAnswer) -> SurveyAnswerOut:
    """Take the survey's one answer: 404 ``survey_not_found``, 410 ``survey_expired``, 409
    ``survey_already_answered``. Exactly one of concurrent answers is stored."""
    survey = await _survey(conn, token)
    kind = FeedbackKind(survey.kind)
    problem = scale_problem(kind, payload.score)
    if problem is not None:
        raise ValidationFailed(
            "The score is outside the survey's scale; see errors[].",
            errors=[{"field": "body.score", "message": problem}],
        )
    now = clock.now()
    feedback_id = new_id()
    claimed = await repository.claim_survey(conn, _token_hash(token), now, feedback_id)
    if claimed is None:
        current = await repository.survey_by_hash(conn, _token_hash(token))
        if current is not None and current.answered_at is not None:
            raise Conflict("This survey has already been answered.", code="survey_already_answered")
        raise SurveyExpired("This survey has expired and can no longer be answered.")
    links = await repository.links(conn, claimed.customer_id, claimed.case_id, None)
    created = await repository.insert_feedback(
        conn,
        {
            "id": feedback_id,
            "customer_id": claimed.customer_id,
            "kind": kind.value,
            "score": payload.score,
            "comment": payload.comment,
            "category": links.case_category,
            "channel": links.case_channel,
            "agent": links.case_assignee,
            "case_id": claimed.case_id if links.case else None,
            "interaction_id": None,
            "survey_id": claimed.id,
            "source": None,
            "external_id": None,
            "submitted_at": now,
            "created_at": now,
        },
    )
    assert created is not None  # no external_id: nothing to conflict with
    await events.record(
        conn, "feedback.received", customer_id=created.customer_id, data=snapshot(created)
    )
    return SurveyAnswerOut(
        kind=kind, score=created.score, comment=created.comment, submitted_at=now
    )
