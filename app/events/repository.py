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

# A stamping pass is a few statements, each simple enough that no plan can make it slow; the
# choice of rows is made in Python over the batch (at most ``batch_size`` rows). It was one
# statement before, with anti-joins over ``events``: planned while the table was near empty (a new
# database, statistics not gathered yet), that statement's nested loops re-read the whole table
# per batch row, and as writers kept appending to it a single pass ran for minutes while the feed
# stood still (seen under a bench of 1,000-order batches).
#
# The batch: the oldest unstamped rows by (occurred_at, id), from the partial index that holds
# exactly those rows in that order.
_UNSTAMPED = """
SELECT id, customer_id, sequence, occurred_at
FROM events
WHERE position IS NULL
ORDER BY occurred_at, id
LIMIT $1
"""
# Customers ($1) whose event just before their first batched sequence ($2) exists unstamped: their
# batched rows wait for it. Stamped rows of a customer are always a prefix of its sequence (every
# pass keeps that true), so when that event is stamped every lower one is too.
_BLOCKED = """
SELECT h.customer_id
FROM unnest($1::uuid[], $2::bigint[]) AS h (customer_id, head)
CROSS JOIN LATERAL (
    SELECT p.position
    FROM events AS p
    WHERE p.customer_id = h.customer_id AND p.sequence < h.head
    ORDER BY p.sequence DESC
    LIMIT 1
) AS p
WHERE p.position IS NULL
"""
# Sequences of customer $1 strictly between $2 and $3: asked only where a customer's batched
# sequences skip a number, for a customer whose previous event is stamped, so every row there is
# unstamped (stamped rows are a prefix) and those not batched hold the rest back. No condition on
# ``position``: with one, the planner may walk the whole partial index of unstamped rows per
# customer (seen: 4.6 s for 2,294 customers) instead of the customer's few index entries.
_SEQUENCES_BETWEEN = """
SELECT g.customer_id, o.sequence
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS g (customer_id, low, high)
CROSS JOIN LATERAL (
    SELECT o.sequence
    FROM events AS o
    WHERE o.customer_id = g.customer_id AND o.sequence > g.low AND o.sequence < g.high
) AS o
"""
# Positions base + slot for the rows $1 (slots $2 are 1..n), base being the counter before it moves
# past them: positions continue contiguously after the last one handed out.
_STAMP = """
WITH state AS (
    UPDATE event_feed_state
    SET last_position = last_position + cardinality($1::uuid[])
    WHERE id = 1
    RETURNING last_position - cardinality($1::uuid[]) AS base
)
UPDATE events AS e
SET position = state.base + a.slot
FROM unnest($1::uuid[], $2::bigint[]) AS a (id, slot), state
WHERE e.id = a.id AND e.position IS NULL
"""


def _group(row: asyncpg.Record) -> uuid.UUID:
    """Rows ordered among themselves: a customer's sequenced events; any other row is alone."""
    if row["customer_id"] is None or row["sequence"] is None:
        return row["id"]  # type: ignore[no-any-return]
    return row["customer_id"]  # type: ignore[no-any-return]


def _by_customer(batch: Sequence[asyncpg.Record]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The batch's sequenced rows per customer, in sequence order."""
    grouped: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for row in batch:
        if _group(row) != row["id"]:
            grouped.setdefault(row["customer_id"], []).append(row)
    for rows in grouped.values():
        rows.sort(key=lambda row: row["sequence"])
    return grouped


def _chosen(
    batch: Sequence[asyncpg.Record],
    by_customer: Mapping[uuid.UUID, list[asyncpg.Record]],
    blocked: set[uuid.UUID],
    between: Mapping[uuid.UUID, set[int]],
) -> list[asyncpg.Record]:
    """The batch rows a pass stamps: rows without a customer, and per customer whose previous
    event is stamped, its batched rows below the first of its sequences in ``between`` left out
    of the batch: a prefix of the customer's unstamped events."""
    chosen = [row for row in batch if _group(row) == row["id"]]
    for customer_id, rows in by_customer.items():
        if customer_id in blocked:
            continue
        outside = between.get(customer_id, set()) - {row["sequence"] for row in rows}
        limit = min(outside, default=None)
        chosen.extend(row for row in rows if limit is None or row["sequence"] < limit)
    return chosen


def _slots(chosen: Sequence[asyncpg.Record]) -> tuple[list[uuid.UUID], list[int]]:
    """Slots 1..n numbered by (occurred_at, id); within a group (``_group``) the k-th smallest slot
    goes to the k-th smallest sequence, so a customer's positions increase with its sequence."""
    slots_of: dict[uuid.UUID, list[int]] = {}
    by_time = sorted(chosen, key=lambda row: (row["occurred_at"], row["id"]))
    for slot, row in enumerate(by_time, start=1):
        slots_of.setdefault(_group(row), []).append(slot)
    ids: list[uuid.UUID] = []
    slots: list[int] = []
    taken: dict[uuid.UUID, int] = {}
    for row in sorted(chosen, key=lambda row: (row["sequence"] or 0, row["id"])):
        group = _group(row)
        k = taken.get(group, 0)
        taken[group] = k + 1
        ids.append(row["id"])
        slots.append(slots_of[group][k])
    return ids, slots


async def stamp_pass(conn: asyncpg.Connection, batch_size: int) -> tuple[int, int]:
    """One sequencer pass in its own transaction: (rows stamped, rows looked at).

    Each statement sees a newer snapshot than the batch's (READ COMMITTED), which is safe: a
    customer's events commit in sequence order, so whatever commits after the batch was read has
    a higher sequence than every batched row of its customer, and no pass but this one stamps."""
    async with conn.transaction(isolation="read_committed"):
        # Blocking: a second sequencer waits here, then (READ COMMITTED: a new snapshot per
        # statement) sees everything the first one stamped.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQUENCER_LOCK_KEY)
        batch = await conn.fetch(_UNSTAMPED, batch_size)
        if not batch:
            return 0, 0
        by_customer = _by_customer(batch)
        heads = [rows[0]["sequence"] for rows in by_customer.values()]
        blocked = {
            row["customer_id"] for row in await conn.fetch(_BLOCKED, list(by_customer), heads)
        }
        gapped = [
            (customer_id, rows[0]["sequence"], rows[-1]["sequence"])
            for customer_id, rows in by_customer.items()
            if customer_id not in blocked
            and rows[-1]["sequence"] - rows[0]["sequence"] + 1 > len(rows)
        ]
        between: dict[uuid.UUID, set[int]] = {}
        if gapped:
            for row in await conn.fetch(_SEQUENCES_BETWEEN, *map(list, zip(*gapped, strict=True))):
                between.setdefault(row["customer_id"], set()).add(row["sequence"])
        chosen = _chosen(batch, by_customer, blocked, between)
        if chosen:
            ids, slots = _slots(chosen)
            status = await conn.execute(_STAMP, ids, slots)
            if status != f"UPDATE {len(ids)}":
                # Rolls the pass back: positions must stay contiguous. Passes hold the lock, so
                # only a missing event_feed_state row (an unmigrated database) gets here.
                raise RuntimeError(f"stamping {len(ids)} events updated {status!r}")
    return len(chosen), len(batch)
