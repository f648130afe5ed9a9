import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, text, tuple_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import BigInteger, DateTime, String
from sqlalchemy.types import Uuid as UuidType

from app.events.models import Event, Xid8

# One round trip: take the customer's next sequence number (its row lock orders concurrent writers)
# and append the event with it.
_APPEND_CUSTOMER_EVENT = text(
    """
    WITH seq AS (
        INSERT INTO customer_event_sequences AS s (customer_id, last_sequence)
        VALUES (:customer_id, 1)
        ON CONFLICT (customer_id) DO UPDATE SET last_sequence = s.last_sequence + 1
        RETURNING last_sequence
    )
    INSERT INTO events (id, type, customer_id, sequence, occurred_at, data, changes)
    SELECT :id, :type, :customer_id, seq.last_sequence, :occurred_at, :data, :changes FROM seq
    RETURNING sequence
    """
).bindparams(
    bindparam("id", type_=UuidType()),
    bindparam("type", type_=String()),
    bindparam("customer_id", type_=UuidType()),
    bindparam("occurred_at", type_=DateTime(timezone=True)),
    bindparam("data", type_=JSONB()),
    bindparam("changes", type_=JSONB(none_as_null=True)),
)

# Rows of transactions still running are held back: a transaction that started earlier but commits
# later would otherwise appear behind a cursor a reader has already passed.
_VISIBLE = text("events.tx_id < pg_snapshot_xmin(pg_current_snapshot())")


async def append(
    session: AsyncSession,
    *,
    event_id: uuid.UUID,
    type: str,
    customer_id: uuid.UUID | None,
    occurred_at: datetime,
    data: dict[str, Any],
    changes: dict[str, Any] | None,
) -> int | None:
    """Append an event in the caller's transaction; returns the customer sequence (or None)."""
    if customer_id is None:
        session.add(
            Event(id=event_id, type=type, occurred_at=occurred_at, data=data, changes=changes)
        )
        await session.flush()
        return None
    result = await session.execute(
        _APPEND_CUSTOMER_EVENT,
        {
            "id": event_id,
            "type": type,
            "customer_id": customer_id,
            "occurred_at": occurred_at,
            "data": data,
            "changes": changes,
        },
    )
    return int(result.scalar_one())


async def feed(
    session: AsyncSession,
    *,
    after: tuple[int, int] | None,
    types: Sequence[str],
    customer_id: uuid.UUID | None,
    limit: int,
) -> Sequence[Event]:
    """Committed events in commit-safe order after ``after`` = (tx_id, position)."""
    query = select(Event).where(_VISIBLE)
    if after is not None:
        query = query.where(
            tuple_(Event.tx_id, Event.position)
            > tuple_(
                bindparam("after_tx", after[0], type_=Xid8()),
                bindparam("after_pos", after[1], type_=BigInteger()),
            )
        )
    if types:
        query = query.where(Event.type.in_(list(types)))
    if customer_id is not None:
        query = query.where(Event.customer_id == customer_id)
    query = query.order_by(Event.tx_id, Event.position).limit(limit)
    return (await session.execute(query)).scalars().all()


async def purge_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(
        delete(Event).where(Event.occurred_at < cutoff).returning(Event.id)
    )
    return len(result.all())
