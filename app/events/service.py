"""The event log: record changes in the same transaction, and read them back as a feed."""

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.auth import PII_FIELDS, REDACTED, Caller
from app.core.errors import BadRequest
from app.core.ids import new_id
from app.events import repository
from app.events.models import Event

RETENTION_DAYS = 90


async def record(
    session: AsyncSession,
    type: str,
    *,
    customer_id: uuid.UUID | None,
    data: Mapping[str, Any],
    changes: Mapping[str, Any] | None = None,
) -> int | None:
    """Write one event in the caller's transaction; it exists only if that transaction commits."""
    return await repository.append(
        session,
        event_id=new_id(),
        type=type,
        customer_id=customer_id,
        occurred_at=clock.now(),
        data=dict(data),
        changes=dict(changes) if changes is not None else None,
    )


def encode_position(tx_id: int, position: int) -> str:
    return base64.urlsafe_b64encode(f"{tx_id}.{position}".encode()).decode().rstrip("=")


def decode_position(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        tx_text, position_text = raw.split(".")
        tx_id, position = int(tx_text), int(position_text)
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise BadRequest("The cursor is not valid.", code="invalid_cursor") from exc
    if not (0 <= tx_id < 2**63 and 0 <= position < 2**63):
        raise BadRequest("The cursor is not valid.", code="invalid_cursor")
    return tx_id, position


def redact(event: Event, caller: Caller) -> dict[str, Any]:
    """The event as a reader may see it: PII values only for keys with pii:read."""
    data = dict(event.data)
    changes = dict(event.changes) if event.changes is not None else None
    if not caller.has("pii:read"):
        for field in PII_FIELDS & data.keys():
            if data[field] is not None:
                data[field] = REDACTED
        if changes is not None:
            for field in PII_FIELDS & changes.keys():
                changes[field] = [REDACTED, REDACTED]
    return {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "customer_id": event.customer_id,
        "sequence": event.sequence,
        "data": data,
        "changes": changes,
    }


async def read_feed(
    session: AsyncSession,
    caller: Caller,
    *,
    after: str | None,
    types: Sequence[str],
    customer_id: uuid.UUID | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str, bool]:
    caller.require("events:read")
    position = decode_position(after) if after else None
    rows = await repository.feed(
        session, after=position, types=types, customer_id=customer_id, limit=limit + 1
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        next_cursor = encode_position(rows[-1].tx_id, rows[-1].position)
    else:
        next_cursor = after or encode_position(0, 0)
    return [redact(row, caller) for row in rows], next_cursor, has_more


async def purge_expired(session: AsyncSession) -> int:
    return await repository.purge_before(session, clock.now() - timedelta(days=RETENTION_DAYS))
