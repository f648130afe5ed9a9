"""Timeline entries written straight into the tables the sources read: these tests are about the
timeline's order, cursor and scopes, not about how each domain validates what it stores."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from app.cases.models import Case, CaseTransition
from app.core.ids import new_id
from app.db import unit_of_work
from app.feedback.models import Feedback
from app.interactions.models import Interaction

BASE = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Written:
    kind: str
    id: uuid.UUID
    at: datetime


async def write_entry(customer_id: uuid.UUID, kind: str, at: datetime) -> Written:
    """One entry of ``kind`` at ``at``; a ``case_transition`` comes with its case (opened an
    hour before, that opening an entry too unless the test filters kinds)."""
    entry_id = new_id()
    async with unit_of_work() as conn:
        if kind == "interaction":
            await conn.execute(
                insert(Interaction).values(
                    customer_id=customer_id,
                    id=entry_id,
                    channel="phone",
                    direction="inbound",
                    kind="call",
                    status="completed",
                    subject=f"call {entry_id}",
                    occurred_at=at,
                )
            )
        elif kind == "case":
            await conn.execute(insert(Case).values(_case(customer_id, entry_id, at)))
        elif kind == "case_transition":
            case_id = new_id()
            await conn.execute(
                insert(Case).values(_case(customer_id, case_id, at - timedelta(hours=1)))
            )
            await conn.execute(
                insert(CaseTransition).values(
                    customer_id=customer_id,
                    id=entry_id,
                    case_id=case_id,
                    from_status="open",
                    to_status="in_progress",
                    reason="picked up",
                    at=at,
                )
            )
        elif kind == "feedback":
            await conn.execute(
                insert(Feedback).values(
                    customer_id=customer_id, id=entry_id, kind="nps", score=9, submitted_at=at
                )
            )
        else:
            raise ValueError(kind)
    return Written(kind, entry_id, at)


def _case(customer_id: uuid.UUID, case_id: uuid.UUID, at: datetime) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "id": case_id,
        "category": "logistics",
        "priority": "normal",
        "status": "open",
        "subject": "Parcel lost",
        "opened_at": at,
    }


def newest_first(entries: list[Written]) -> list[tuple[str, str]]:
    """The timeline's order: (at, kind, id), newest first."""
    ordered = sorted(entries, key=lambda e: (e.at, e.kind, e.id), reverse=True)
    return [(e.kind, str(e.id)) for e in ordered]
