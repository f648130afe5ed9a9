import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from pydantic_core import to_json
from sqlalchemy import Table, bindparam, delete, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import DateTime, String
from sqlalchemy.types import Uuid as UuidType

from app.db import Connection
from app.db.driver import DriverStatement
from app.events.models import Event
from app.events.schemas import EventOut

events: Table = Event.__table__  # type: ignore[assignment]

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


# The parameters ``customer_event_ctes`` adds, in order.
CUSTOMER_EVENT_PARAMS = ("event_id", "event_type", "event_occurred_at", "event_data")


def customer_event_ctes(source: str, first_param: int) -> str:
    """Two CTEs for a statement that writes customers: for each row of the CTE ``source`` (its
    ``id`` is a customer id) take the customer's next sequence number and append one event, as
    ``append`` does. They use ``$first_param`` onwards for ``CUSTOMER_EVENT_PARAMS``; PostgreSQL
    runs data-modifying CTEs once and to completion, so no row of ``source``, no event."""
    event_id, event_type, occurred_at, data = (f"${first_param + i}" for i in range(4))
    return f"""event_sequence AS (
        INSERT INTO customer_event_sequences AS s (customer_id, last_sequence)
        SELECT id, 1 FROM {source}
        ON CONFLICT (customer_id) DO UPDATE SET last_sequence = s.last_sequence + 1
        RETURNING customer_id, last_sequence
    ),
    appended_event AS (
        INSERT INTO events (id, type, customer_id, sequence, occurred_at, data)
        SELECT {event_id}::uuid, {event_type}::varchar, customer_id, last_sequence,
               {occurred_at}::timestamptz, {data}::jsonb
        FROM event_sequence
    )"""


# Many customer events in one statement: each customer's sequence row is taken once, in customer
# order (so two such statements never wait on each other in a cycle), moved on by its number of
# events, and its events numbered in the order given. $1..$5: arrays of id, type, customer_id,
# occurred_at and data (JSON text), one element per event.
_APPEND_CUSTOMER_EVENTS = """
WITH given AS (
    SELECT g.id, g.type, g.customer_id, g.occurred_at, g.data::jsonb AS data, g.n
    FROM unnest($1::uuid[], $2::varchar[], $3::uuid[], $4::timestamptz[], $5::text[])
         WITH ORDINALITY AS g(id, type, customer_id, occurred_at, data, n)
),
taken AS (
    INSERT INTO customer_event_sequences AS s (customer_id, last_sequence)
    SELECT customer_id, count(*) FROM given GROUP BY customer_id ORDER BY customer_id
    ON CONFLICT (customer_id) DO UPDATE SET last_sequence = s.last_sequence + excluded.last_sequence
    RETURNING customer_id, last_sequence
)
INSERT INTO events (id, type, customer_id, sequence, occurred_at, data)
SELECT g.id, g.type, g.customer_id,
       t.last_sequence - count(*) OVER w + row_number() OVER (w ORDER BY g.n),
       g.occurred_at, g.data
FROM given AS g JOIN taken AS t USING (customer_id)
WINDOW w AS (PARTITION BY g.customer_id)
"""
_APPEND_CUSTOMER_EVENTS_ON_DRIVER = DriverStatement(
    _APPEND_CUSTOMER_EVENTS, ["ids", "types", "customer_ids", "occurred_at", "data"]
)


async def append_customer_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append many customer events in the caller's transaction, in one statement; returns how many.

    Each row names ``event_id``, ``event_type``, ``customer_id``, ``event_occurred_at`` and
    ``event_data`` (what ``events.service.customer_event`` returns, plus the customer). A
    customer's events get consecutive sequence numbers in the order given."""
    if not rows:
        return 0
    await _APPEND_CUSTOMER_EVENTS_ON_DRIVER.fetch(
        conn,
        {
            "ids": [row["event_id"] for row in rows],
            "types": [row["event_type"] for row in rows],
            "customer_ids": [row["customer_id"] for row in rows],
            "occurred_at": [row["event_occurred_at"] for row in rows],
            "data": [to_json(row["event_data"]).decode() for row in rows],
        },
    )
    return len(rows)


async def append(
    conn: Connection,
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
        await conn.execute(
            insert(events).values(
                id=event_id, type=type, occurred_at=occurred_at, data=data, changes=changes
            )
        )
        return None
    result = await conn.execute(
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
    conn: Connection,
    *,
    after: int,
    types: Sequence[str],
    customer_id: uuid.UUID | None,
    limit: int,
) -> list[EventOut]:
    """Stamped events after position ``after``, in position order. Rows the sequencer has not
    stamped yet are left out; they get positions above every position stamped before them."""
    columns = [events.c[name] for name in EventOut.model_fields]
    query = select(*columns).where(events.c.position.is_not(None), events.c.position > after)
    if types:
        query = query.where(events.c.type.in_(list(types)))
    if customer_id is not None:
        query = query.where(events.c.customer_id == customer_id)
    query = query.order_by(events.c.position).limit(limit)
    return [EventOut.from_stored(row._mapping) for row in await conn.execute(query)]


async def purge_before(conn: Connection, cutoff: datetime) -> int:
    result = await conn.execute(
        delete(events).where(events.c.occurred_at < cutoff).returning(events.c.id)
    )
    return len(result.all())


# The sequencer's advisory lock key (any fixed bigint; "kehu_evt" in ASCII). Every pass in every
# process takes it, so passes run one at a time and each sees the stamps of the one before.
SEQUENCER_LOCK_KEY = 0x6B6568755F657674

# One stamping pass, in one statement (one snapshot). $1 = batch size.
#   batch:   the oldest unstamped rows by (occurred_at, id).
#   heads:   per customer in the batch, its lowest batched sequence; usable only when the customer's
#            previous event (if any) is stamped. Stamped rows of a customer are always a prefix of its
#            sequence (every pass keeps that true), so then every lower event is stamped too.
#   chosen:  rows without a customer, and customer rows with no unstamped row outside the batch
#            between the head and them: for each customer, a prefix of its unstamped events.
#   slots:   numbered by (occurred_at, id); within a customer the k-th smallest slot goes to the
#            k-th smallest sequence, so positions increase with sequence.
#   state:   the counter moves past the slots used; positions continue contiguously after it.
STAMP_PASS = """
WITH batch AS MATERIALIZED (
    SELECT id, customer_id, sequence, occurred_at
    FROM events
    WHERE position IS NULL
    ORDER BY occurred_at, id
    LIMIT $1
),
heads AS (
    SELECT customer_id, min(sequence) AS first_sequence
    FROM batch
    WHERE customer_id IS NOT NULL AND sequence IS NOT NULL
    GROUP BY customer_id
),
ready AS (
    SELECT h.customer_id, h.first_sequence
    FROM heads AS h
    WHERE coalesce((
        SELECT p.position IS NOT NULL
        FROM events AS p
        WHERE p.customer_id = h.customer_id AND p.sequence < h.first_sequence
        ORDER BY p.sequence DESC
        LIMIT 1
    ), true)
),
chosen AS (
    SELECT b.id, b.occurred_at, b.sequence, b.id::text AS grp
    FROM batch AS b
    WHERE b.customer_id IS NULL OR b.sequence IS NULL
    UNION ALL
    SELECT b.id, b.occurred_at, b.sequence, b.customer_id::text AS grp
    FROM batch AS b
    JOIN ready AS r ON r.customer_id = b.customer_id
    WHERE b.sequence IS NOT NULL
      AND NOT EXISTS (
        SELECT 1
        FROM events AS o
        WHERE o.customer_id = b.customer_id
          AND o.sequence > r.first_sequence
          AND o.sequence < b.sequence
          AND o.position IS NULL
          AND NOT EXISTS (SELECT 1 FROM batch AS i WHERE i.id = o.id)
      )
),
slotted AS (
    SELECT id, grp, sequence, row_number() OVER (ORDER BY occurred_at, id) AS slot
    FROM chosen
),
by_sequence AS (
    SELECT id, grp, row_number() OVER (PARTITION BY grp ORDER BY sequence, id) AS k
    FROM slotted
),
by_slot AS (
    SELECT grp, slot, row_number() OVER (PARTITION BY grp ORDER BY slot) AS k
    FROM slotted
),
assigned AS (
    SELECT q.id, s.slot FROM by_sequence AS q JOIN by_slot AS s USING (grp, k)
),
state AS (
    UPDATE event_feed_state
    SET last_position = last_position + (SELECT count(*) FROM assigned)
    WHERE id = 1 AND EXISTS (SELECT 1 FROM assigned)
    RETURNING last_position - (SELECT count(*) FROM assigned) AS base
),
stamped AS (
    UPDATE events AS e
    SET position = state.base + a.slot
    FROM assigned AS a, state
    WHERE e.id = a.id AND e.position IS NULL
    RETURNING e.id
)
SELECT (SELECT count(*) FROM stamped) AS stamped, (SELECT count(*) FROM batch) AS batched
"""


async def stamp_pass(conn: asyncpg.Connection, batch_size: int) -> tuple[int, int]:
    """One sequencer pass in its own transaction: (rows stamped, rows looked at)."""
    async with conn.transaction(isolation="read_committed"):
        # Blocking: a second sequencer waits here, then (READ COMMITTED: a new snapshot per
        # statement) sees everything the first one stamped.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQUENCER_LOCK_KEY)
        row = await conn.fetchrow(STAMP_PASS, batch_size)
    return int(row["stamped"]), int(row["batched"])
