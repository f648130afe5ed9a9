"""The customer timeline: every registered source's entries of one customer, newest first, one
opaque cursor across kinds. Entries a key may not read (by the source's scope) are left out."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core import cursors
from app.core.auth import Caller
from app.core.errors import BadRequest, Forbidden, ValidationFailed
from app.core.pagination import Page
from app.customers import service as customers
from app.timeline import repository
from app.timeline.repository import Position
from app.timeline.schemas import TimelineEntry
from app.timeline.sources import TimelineSource, registered

# What signs a timeline cursor apart from every other list's.
_CURSOR_TAG = "timeline"


def parse_kinds(values: Sequence[str] | None) -> list[str] | None:
    """``?kinds=`` as given (repeated, comma-separated or both); None: every kind."""
    if not values:
        return None
    kinds = sorted({k.strip() for v in values for k in v.split(",") if k.strip()})
    known = registered()
    unknown = [k for k in kinds if k not in known]
    if unknown or not kinds:
        raise ValidationFailed(
            f"Unknown timeline kind(s): {', '.join(unknown) or '(none)'}; "
            f"the kinds are {', '.join(known)}.",
            code="unknown_timeline_kind",
            errors=[{"field": "query.kinds", "message": f"one or more of {', '.join(known)}"}],
        )
    return kinds


def visible_sources(caller: Caller, kinds: Sequence[str] | None) -> list[TimelineSource]:
    """The sources the caller may read, of the ``kinds`` asked for (all when None). Asking for a
    kind the key may not read is a 403; without ``kinds`` those are silently left out."""
    sources = registered()
    if kinds is None:
        return [s for s in sources.values() if caller.has(s.scope)]
    denied = sorted({sources[k].scope for k in kinds if not caller.has(sources[k].scope)})
    if denied:
        raise Forbidden(
            f"This API key lacks the scope(s): {', '.join(denied)}.", code="missing_scope"
        )
    return [sources[k] for k in kinds]


async def encode_position(entry: TimelineEntry) -> str:
    return await cursors.encode(
        {"t": _CURSOR_TAG, "at": entry.at.isoformat(), "k": entry.kind, "i": str(entry.id)}
    )


async def decode_position(cursor: str) -> Position:
    payload: Any = await cursors.decode(cursor)
    try:
        if payload["t"] != _CURSOR_TAG:
            raise ValueError("another list's cursor")
        at = datetime.fromisoformat(payload["at"])
        kind, entry_id = payload["k"], uuid.UUID(payload["i"])
        if not isinstance(kind, str) or at.tzinfo is None:
            raise ValueError("malformed")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(
            "The cursor was not made by this list; start again without a cursor.",
            code="invalid_cursor",
        ) from exc
    return Position(at, kind, entry_id)


async def customer_timeline(
    conn: AsyncConnection,
    caller: Caller,
    customer_id: uuid.UUID,
    *,
    kinds: Sequence[str] | None,
    limit: int,
    cursor: str | None,
) -> Page[TimelineEntry]:
    caller.require("customers:read")
    sources = visible_sources(caller, parse_kinds(kinds))
    after = await decode_position(cursor) if cursor else None
    await customers.get_customer(conn, caller, customer_id)  # 404 for an unknown customer
    entries = await repository.page(conn, customer_id, sources, after=after, limit=limit + 1)
    next_cursor = await encode_position(entries[limit - 1]) if len(entries) > limit else None
    return Page(entries[:limit], next_cursor)


async def first_pages(
    conn: AsyncConnection,
    caller: Caller,
    customer_ids: Sequence[uuid.UUID],
    *,
    kinds: Sequence[str] | None,
    limit: int,
) -> dict[uuid.UUID, Page[TimelineEntry]]:
    """The first page of each customer's timeline, in one statement (GraphQL's
    ``customers { timeline }``); the customers were already read by the caller."""
    caller.require("customers:read")
    sources = visible_sources(caller, parse_kinds(kinds))
    entries = await repository.first_pages(conn, customer_ids, sources, after=None, limit=limit + 1)
    pages: dict[uuid.UUID, Page[TimelineEntry]] = {}
    for customer_id, found in entries.items():
        next_cursor = await encode_position(found[limit - 1]) if len(found) > limit else None
        pages[customer_id] = Page(found[:limit], next_cursor)
    return pages
