"""Test helpers of the interactions tests: a stored case (the cases API is another domain's) and
the events recorded for an interaction."""

import uuid
from typing import Any

from sqlalchemy import insert, select

from app.cases.models import Case
from app.core import clock
from app.db import read_connection, unit_of_work
from app.events.models import Event


async def store_case(customer_id: str) -> str:
    """A new open case of this customer, written straight to its table; its id."""
    case_id = uuid.uuid4()
    async with unit_of_work() as conn:
        await conn.execute(
            insert(Case).values(
                customer_id=uuid.UUID(customer_id),
                id=case_id,
                category="logistics",
                priority="normal",
                status="open",
                subject="Parcel late",
                opened_at=clock.now(),
            )
        )
    return str(case_id)


async def events_of(type: str, customer_id: str | None = None) -> list[Any]:
    """The events of this type (of this customer), oldest first."""
    query = select(Event.__table__).where(Event.type == type).order_by(Event.occurred_at, Event.id)
    if customer_id is not None:
        query = query.where(Event.customer_id == uuid.UUID(customer_id))
    async with read_connection() as conn:
        return list((await conn.execute(query)).all())
