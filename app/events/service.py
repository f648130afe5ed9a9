"""The event log: record changes in the same transaction, and read them back as a feed."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from app.core import clock, cursors
from app.core.auth import Caller
from app.core.errors import BadRequest
from app.core.ids import new_id
from app.core.schemas import declared_pii
from app.db import Connection
from app.events import repository
from app.events.schemas import EventOut

RETENTION_DAYS = 90


async def record(
    conn: Connection,
    type: str,
    *,
    customer_id: uuid.UUID | None,
    data: Mapping[str, Any],
    changes: Mapping[str, Any] | None = None,
) -> int | None:
    """Write one event in the caller's transaction; it exists only if that transaction commits."""
    return await repository.append(
        conn,
        event_id=new_id(),
        type=type,
        customer_id=customer_id,
        occurred_at=clock.now(),
        data=dict(data),
        changes=dict(changes) if changes is not None else None,
    )


def customer_event(type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of one event written by ``repository.customer_event_ctes`` inside another
    statement (the same event ``record`` would write)."""
    return {
        "event_id": new_id(),
        "event_type": type,
        "event_occurred_at": clock.now(),
        "event_data": dict(data),
    }


async def encode_cursor(position: int) -> str:
    return await cursors.encode({"p": position})


async def decode_cursor(cursor: str) -> int:
    """The feed position a cursor of ours carries; ``invalid_cursor`` for anything else."""
    payload = await cursors.decode(cursor)
    position = payload.get("p") if isinstance(payload, dict) else None
    if type(position) is not int or not 0 <= position < 2**63:
        raise BadRequest("The cursor is not valid.", code="invalid_cursor")
    return position


def redact(event: EventOut, caller: Caller) -> EventOut:
    """The event as a reader may see it. Without pii:read, PII values in ``data`` become null and
    their names are listed in ``data.redacted_fields`` (with those of changed PII fields, whose
    ``changes`` entry becomes ``[null, null]``)."""
    data = dict(event.data)
    changes = dict(event.changes) if event.changes is not None else None
    if not caller.has("pii:read"):
        pii = declared_pii()
        redacted = {field for field in pii & data.keys() if data[field] is not None}
        for field in redacted:
            data[field] = None
        if changes is not None:
            for field in pii & changes.keys():
                changes[field] = [None, None]
                redacted.add(field)
        if redacted:
            data["redacted_fields"] = sorted(redacted)
    return event.model_copy(update={"data": data, "changes": changes})


async def read_feed(
    conn: Connection,
    caller: Caller,
    *,
    cursor: str | None,
    types: Sequence[str],
    customer_id: uuid.UUID | None,
    limit: int,
) -> tuple[list[EventOut], str, bool]:
    """A page of stamped events after ``cursor``, the cursor to continue from (never None), and
    whether more events are available right now."""
    caller.require("events:read")
    after = await decode_cursor(cursor) if cursor else 0
    rows = await repository.feed(
        conn, after=after, types=types, customer_id=customer_id, limit=limit + 1
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        next_cursor = await encode_cursor(rows[-1].position)
    else:
        next_cursor = cursor or await encode_cursor(0)
    return [redact(row, caller) for row in rows], next_cursor, has_more


async def purge_expired(conn: Connection) -> int:
    return await repository.purge_before(conn, clock.now() - timedelta(days=RETENTION_DAYS))
