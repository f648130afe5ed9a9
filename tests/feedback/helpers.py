"""Rows the feedback and report tests need from other domains, written straight into their tables
(the figures a report reads, such as a case's business seconds, are set by the cases domain over
time; here they are set as the test states them)."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert

from app.cases.models import Case
from app.core.ids import new_id
from app.db import unit_of_work
from app.feedback import service
from app.feedback.models import Feedback
from app.interactions.models import Interaction


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def insert_case(customer_id: str | uuid.UUID, **columns: Any) -> uuid.UUID:
    """A case of this customer (open, normal, `other`, opened now unless given); its id."""
    case_id = new_id()
    values: dict[str, Any] = {
        "customer_id": uuid.UUID(str(customer_id)),
        "id": case_id,
        "category": "other",
        "priority": "normal",
        "status": "open",
        "subject": "Parcel late",
        "opened_at": datetime.now(UTC),
    }
    values.update(columns)
    async with unit_of_work() as conn:
        await conn.execute(insert(_table(Case)).values(**values))
    return case_id


async def insert_interaction(customer_id: str | uuid.UUID, **columns: Any) -> uuid.UUID:
    """A completed inbound call of this customer; its id."""
    interaction_id = new_id()
    values: dict[str, Any] = {
        "customer_id": uuid.UUID(str(customer_id)),
        "id": interaction_id,
        "channel": "phone",
        "direction": "inbound",
        "kind": "call",
        "status": "completed",
        "occurred_at": datetime.now(UTC),
    }
    values.update(columns)
    async with unit_of_work() as conn:
        await conn.execute(insert(_table(Interaction)).values(**values))
    return interaction_id


async def issue_survey(
    customer_id: str | uuid.UUID, case_id: uuid.UUID | None = None, kind: str = "csat"
) -> service.IssuedSurvey:
    async with unit_of_work() as conn:
        return await service.issue_survey(
            conn, customer_id=uuid.UUID(str(customer_id)), case_id=case_id, kind=kind
        )


async def insert_feedback(
    customer_id: str | uuid.UUID, kind: str, score: int, submitted_at: str, **columns: Any
) -> uuid.UUID:
    """An answer stored as given (``submitted_at`` an RFC 3339 time); its id."""
    feedback_id = new_id()
    values: dict[str, Any] = {
        "customer_id": uuid.UUID(str(customer_id)),
        "id": feedback_id,
        "kind": kind,
        "score": score,
        "submitted_at": datetime.fromisoformat(submitted_at),
    }
    values.update(columns)
    async with unit_of_work() as conn:
        await conn.execute(insert(_table(Feedback)).values(**values))
    return feedback_id
