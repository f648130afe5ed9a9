"""The customer timeline as one statement: each registered source's newest rows after the
position (through its ``(customer_id, <at>, id)`` index), merged by ``UNION ALL`` and cut to one
page. For many customers at once (GraphQL), the same statement runs per customer in a ``LATERAL``
join over the ids: one statement whatever the number of customers."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    func,
    literal_column,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from app.timeline.schemas import TimelineEntry
from app.timeline.sources import TimelineSource


@dataclass(frozen=True)
class Position:
    """Where a page ends: entries sort by (at, kind, id), newest first."""

    at: datetime
    kind: str
    id: uuid.UUID


def _quoted(name: str) -> Any:
    # Kinds and field names are identifiers declared in code, never client input.
    if not name.replace("_", "").isalnum():
        raise ValueError(f"Not an identifier: {name!r}")
    return literal_column(f"'{name}'")


def _after(source: TimelineSource, at: Any, row_id: Any, position: Position) -> ColumnElement[bool]:
    if source.kind < position.kind:
        return at <= position.at  # type: ignore[no-any-return]
    if source.kind > position.kind:
        return at < position.at  # type: ignore[no-any-return]
    return tuple_(at, row_id) < tuple_(position.at, position.id)


def _source_rows(
    source: TimelineSource, customer_id: Any, after: Position | None, limit: int
) -> Select[Any]:
    table = source.table
    at = table.c[source.at]
    data = func.jsonb_build_object(
        *chain.from_iterable((_quoted(name), table.c[name]) for name in source.fields)
    )
    query = select(
        _quoted(source.kind).label("kind"),
        table.c.id.label("id"),
        at.label("at"),
        data.label("data"),
    ).where(table.c.customer_id == customer_id)
    if source.where is not None:
        query = query.where(source.where(table))
    if after is not None:
        query = query.where(_after(source, at, table.c.id, after))
    if not isinstance(customer_id, uuid.UUID):
        # A column of the statement this one is LATERAL-joined to: correlated, not a FROM of
        # its own.
        query = query.correlate(customer_id.table)
    return query.order_by(at.desc(), table.c.id.desc()).limit(limit)


def _merged(
    sources: Sequence[TimelineSource], customer_id: Any, after: Position | None, limit: int
) -> Select[Any]:
    parts = [_source_rows(s, customer_id, after, limit).subquery() for s in sources]
    merged = union_all(*(select(part) for part in parts)).subquery("entries")
    return (
        select(merged)
        .order_by(merged.c.at.desc(), merged.c.kind.desc(), merged.c.id.desc())
        .limit(limit)
    )


def _entry(values: Any) -> TimelineEntry:
    return TimelineEntry.from_stored(values)


async def page(
    conn: AsyncConnection,
    customer_id: uuid.UUID,
    sources: Sequence[TimelineSource],
    *,
    after: Position | None,
    limit: int,
) -> list[TimelineEntry]:
    """Up to ``limit`` entries of one customer after ``after`` (from the newest when None)."""
    if not sources:
        return []
    result = await conn.execute(_merged(sources, customer_id, after, limit))
    return [_entry(row._mapping) for row in result]


async def first_pages(
    conn: AsyncConnection,
    customer_ids: Sequence[uuid.UUID],
    sources: Sequence[TimelineSource],
    *,
    after: Position | None,
    limit: int,
) -> dict[uuid.UUID, list[TimelineEntry]]:
    """``page`` for many customers in one statement."""
    found: dict[uuid.UUID, list[TimelineEntry]] = {c: [] for c in customer_ids}
    if not sources or not customer_ids:
        return found
    ids = (
        func.unnest(bindparam("customer_ids", list(customer_ids), type_=ARRAY(UUID(as_uuid=True))))
        .table_valued("customer_id")
        .render_derived(name="wanted")
    )
    entries = _merged(sources, ids.c.customer_id, after, limit).lateral("entries_of")
    query = select(ids.c.customer_id.label("owner"), entries).select_from(ids.join(entries, true()))
    result = await conn.execute(query)
    for row in result:
        found[row.owner].append(_entry(row._mapping))
    return found
