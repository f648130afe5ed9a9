"""Every SQL statement about feedback and surveys (Core, typed results)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from app.cases.models import Case
from app.customers.models import Customer
from app.db import Connection
from app.feedback.models import Feedback, Survey
from app.feedback.schemas import STORED_FIELDS, FeedbackFilter, FeedbackOut, FeedbackSort
from app.interactions.models import Interaction

feedback: Table = Feedback.__table__  # type: ignore[assignment]
surveys: Table = Survey.__table__  # type: ignore[assignment]
_customers: Table = Customer.__table__  # type: ignore[assignment]
_cases: Table = Case.__table__  # type: ignore[assignment]
_interactions: Table = Interaction.__table__  # type: ignore[assignment]

_STORED = [feedback.c[name] for name in STORED_FIELDS]
_GET = select(*_STORED).where(feedback.c.id == bindparam("feedback_id"))
_GET_MANY = select(*_STORED).where(feedback.c.id.in_(bindparam("feedback_ids", expanding=True)))
_BY_EXTERNAL_ID = select(*_STORED).where(
    feedback.c.source == bindparam("source"),
    feedback.c.external_id == bindparam("external_id"),
)


def feedback_from_row(row: Any) -> FeedbackOut:
    return FeedbackOut.from_stored(row._mapping)


@dataclass(frozen=True, slots=True)
class Links:
    """What an answer's links point at: whether each exists (for this customer), and what the
    answer takes from them."""

    customer: bool
    case: bool
    case_assignee: str | None
    case_category: str | None
    case_channel: str | None
    interaction: bool
    interaction_agent: str | None


_CUSTOMER_ID: BindParameter[uuid.UUID] = bindparam("customer_id")
_CASE_ID: BindParameter[uuid.UUID] = bindparam("case_id")
_INTERACTION_ID: BindParameter[uuid.UUID] = bindparam("interaction_id")
_THE_CASE = and_(_cases.c.customer_id == _CUSTOMER_ID, _cases.c.id == _CASE_ID)
_THE_INTERACTION = and_(
    _interactions.c.customer_id == _CUSTOMER_ID, _interactions.c.id == _INTERACTION_ID
)
# One round trip for every link of an answer (a NULL id matches nothing).
_LINKS = select(
    exists()
    .where(_customers.c.id == _CUSTOMER_ID, _customers.c.deleted_at.is_(None))
    .label("customer"),
    exists().where(_THE_CASE).label("case"),
    select(_cases.c.assignee).where(_THE_CASE).scalar_subquery().label("case_assignee"),
    select(_cases.c.category).where(_THE_CASE).scalar_subquery().label("case_category"),
    select(_cases.c.channel).where(_THE_CASE).scalar_subquery().label("case_channel"),
    exists().where(_THE_INTERACTION).label("interaction"),
    select(_interactions.c.agent)
    .where(_THE_INTERACTION)
    .scalar_subquery()
    .label("interaction_agent"),
)


async def links(
    conn: Connection,
    customer_id: uuid.UUID,
    case_id: uuid.UUID | None,
    interaction_id: uuid.UUID | None,
) -> Links:
    row = (
        await conn.execute(
            _LINKS,
            {"customer_id": customer_id, "case_id": case_id, "interaction_id": interaction_id},
        )
    ).one()
    return Links(**row._mapping)


async def insert_feedback(conn: Connection, values: dict[str, Any]) -> FeedbackOut | None:
    """Store an answer; None (nothing written) when its (source, external_id) is already stored,
    whoever stored it (a concurrent insert of the same pair waits for the other to finish)."""
    statement = (
        insert(feedback)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["source", "external_id"],
            index_where=text("external_id IS NOT NULL"),
        )
        .returning(*_STORED)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else feedback_from_row(row)


async def by_external_id(conn: Connection, source: str, external_id: str) -> FeedbackOut | None:
    row = (
        await conn.execute(_BY_EXTERNAL_ID, {"source": source, "external_id": external_id})
    ).first()
    return None if row is None else feedback_from_row(row)


async def get(conn: Connection, feedback_id: uuid.UUID) -> FeedbackOut | None:
    row = (await conn.execute(_GET, {"feedback_id": feedback_id})).first()
    return None if row is None else feedback_from_row(row)


async def get_many(conn: Connection, ids: Sequence[uuid.UUID]) -> list[FeedbackOut]:
    if not ids:
        return []
    rows = await conn.execute(_GET_MANY, {"feedback_ids": list(ids)})
    return [feedback_from_row(row) for row in rows]


def list_query(filters: FeedbackFilter, sort: FeedbackSort) -> Select[Any]:
    """The filtered, sorted answers (for ``fetch_page``), ordered by a unique key."""
    conditions: list[ColumnElement[bool]] = []
    equal_to = {
        feedback.c.customer_id: filters.customer_id,
        feedback.c.case_id: filters.case_id,
        feedback.c.kind: filters.kind.value if filters.kind else None,
        feedback.c.category: filters.category,
        feedback.c.channel: filters.channel.value if filters.channel else None,
        feedback.c.agent: filters.agent,
    }
    conditions += [column == value for column, value in equal_to.items() if value is not None]
    if filters.submitted_after is not None:
        conditions.append(feedback.c.submitted_at >= filters.submitted_after)
    if filters.submitted_before is not None:
        conditions.append(feedback.c.submitted_at < filters.submitted_before)
    column = feedback.c.submitted_at
    order: tuple[ColumnElement[Any], ColumnElement[Any]] = (column, feedback.c.id)
    if sort is FeedbackSort.submitted_at_desc:
        order = (column.desc(), feedback.c.id.desc())
    return select(*_STORED).where(and_(true(), *conditions)).order_by(*order)


# ------------------------------------------------------------------------------------------ surveys


@dataclass(frozen=True, slots=True)
class StoredSurvey:
    id: uuid.UUID
    customer_id: uuid.UUID
    case_id: uuid.UUID | None
    kind: str
    expires_at: datetime
    answered_at: datetime | None


_SURVEY_COLUMNS = [
    surveys.c.id,
    surveys.c.customer_id,
    surveys.c.case_id,
    surveys.c.kind,
    surveys.c.expires_at,
    surveys.c.answered_at,
]
_SURVEY_BY_HASH = select(*_SURVEY_COLUMNS).where(surveys.c.token_hash == bindparam("token_hash"))
# The one answer a survey takes: only the first of concurrent answers finds it unanswered (the
# others wait for its row lock, then see answered_at set and update nothing).
_NOW: BindParameter[datetime] = bindparam("now")
_CLAIM = (
    update(surveys)
    .where(
        surveys.c.token_hash == bindparam("claimed_hash"),
        surveys.c.answered_at.is_(None),
        surveys.c.expires_at > _NOW,
    )
    .values(answered_at=_NOW, feedback_id=bindparam("new_feedback_id"))
    .returning(*_SURVEY_COLUMNS)
)


async def insert_survey(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(surveys).values(**values))


async def survey_by_hash(conn: Connection, token_hash: bytes) -> StoredSurvey | None:
    row = (await conn.execute(_SURVEY_BY_HASH, {"token_hash": token_hash})).first()
    return None if row is None else StoredSurvey(**row._mapping)


async def claim_survey(
    conn: Connection, token_hash: bytes, now: datetime, feedback_id: uuid.UUID
) -> StoredSurvey | None:
    """Mark the survey answered by ``feedback_id`` if it is open (not answered, not expired);
    None when it is not."""
    row = (
        await conn.execute(
            _CLAIM, {"claimed_hash": token_hash, "now": now, "new_feedback_id": feedback_id}
        )
    ).first()
    return None if row is None else StoredSurvey(**row._mapping)
