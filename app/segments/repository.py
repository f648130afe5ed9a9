"""Every SQL statement about segments and their memberships.

A membership change and its ``segment.member_entered`` / ``segment.member_exited`` event are one
statement: the change's RETURNING rows feed the customer's sequence row (taken in customer order,
as ``app.events.repository.append_customer_events`` takes them) and the event insert, so a change
without its event (or an event without its change) cannot be committed.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Select,
    String,
    Subquery,
    Table,
    and_,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.types import DateTime, Uuid

from app.customers.repository import LIVE
from app.db import Connection
from app.events.models import CustomerEventSequence, Event
from app.rules.compiler import customers
from app.rules.repository import matching_ids
from app.rules.schemas import Rule
from app.segments.models import Segment, SegmentFollowState, SegmentMembership
from app.segments.schemas import CustomerSegmentOut, MembershipOut, SegmentOut, SegmentSort

segments: Table = Segment.__table__  # type: ignore[assignment]
memberships: Table = SegmentMembership.__table__  # type: ignore[assignment]
events: Table = Event.__table__  # type: ignore[assignment]
sequences: Table = CustomerEventSequence.__table__  # type: ignore[assignment]


class SegmentKey(Protocol):
    """What a membership statement needs of a segment (a ``SegmentOut`` has it)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def name(self) -> str: ...

    @property
    def rule_version(self) -> int: ...


@dataclass(frozen=True, slots=True)
class DynamicSegment:
    """A dynamic segment as the follower reads it: without counting its members."""

    id: uuid.UUID
    name: str
    rule: Rule
    rule_version: int


ENTERED = "segment.member_entered"
EXITED = "segment.member_exited"
CURRENT = memberships.c.exited_at.is_(None)

_MEMBER_COUNT = (
    select(func.count())
    .select_from(memberships)
    .where(memberships.c.segment_id == segments.c.id, CURRENT)
    .scalar_subquery()
    .label("member_count")
)
_STORED = [*segments.c, _MEMBER_COUNT]


def _segment(row: Any) -> SegmentOut:
    values = dict(row._mapping)
    if values["rule"] is not None:
        values["rule"] = Rule.parse(values["rule"])
    return SegmentOut.model_validate(values)


async def get(conn: Connection, segment_id: uuid.UUID, *, lock: bool = False) -> SegmentOut | None:
    query = select(*_STORED).where(segments.c.id == segment_id)
    if lock:
        # The segment row only: the count reads memberships without locking them.
        query = query.with_for_update(of=segments)
    row = (await conn.execute(query)).first()
    return None if row is None else _segment(row)


async def name_taken(conn: Connection, name: str, other_than: uuid.UUID | None = None) -> bool:
    query = select(segments.c.id).where(segments.c.name == name)
    if other_than is not None:
        query = query.where(segments.c.id != other_than)
    return (await conn.execute(query)).first() is not None


async def insert_segment(conn: Connection, values: dict[str, Any]) -> bool:
    """False when the name is taken (by a concurrent create too)."""
    statement = (
        pg_insert(segments)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(segments.c.id)
    )
    return (await conn.execute(statement)).first() is not None


async def save_changes(conn: Connection, segment_id: uuid.UUID, values: dict[str, Any]) -> None:
    await conn.execute(
        update(segments)
        .where(segments.c.id == segment_id)
        .values(**values, version=segments.c.version + 1)
    )


async def mark_refreshed(conn: Connection, segment_id: uuid.UUID, when: datetime) -> None:
    """A refresh is not a change of the segment: its version (and ETag) stay."""
    await conn.execute(
        update(segments).where(segments.c.id == segment_id).values(refreshed_at=when)
    )


async def delete_segment(conn: Connection, segment_id: uuid.UUID) -> None:
    # Its memberships go with it (ON DELETE CASCADE): a deleted segment has no history to ask.
    await conn.execute(delete(segments).where(segments.c.id == segment_id))


def list_query(sort: SegmentSort) -> Select[Any]:
    column = segments.c.created_at
    descending = sort.value.startswith("-")
    order = (column.desc(), segments.c.id.desc()) if descending else (column, segments.c.id)
    return select(*_STORED).order_by(*order)


def segment_from_row(row: Any) -> SegmentOut:
    return _segment(row)


async def count_matching(conn: Connection, rule: Rule, now: datetime) -> int:
    query = select(func.count()).select_from(matching_ids(rule, now).subquery())
    return int((await conn.execute(query)).scalar_one())


def _with_events(changes: CTE, segment: SegmentKey, now: datetime) -> Select[Any]:
    """The statement's end: for each changed customer (``changes``: customer_id, type,
    rule_version) its next sequence number and its event; returns (entered, exited) counts."""
    taken = (
        pg_insert(sequences)
        .from_select(
            ["customer_id", "last_sequence"],
            select(changes.c.customer_id, func.count())
            .group_by(changes.c.customer_id)
            .order_by(changes.c.customer_id),
        )
        .on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                "last_sequence": sequences.c.last_sequence
                + pg_insert(sequences).excluded.last_sequence
            },
        )
        .returning(sequences.c.customer_id, sequences.c.last_sequence)
        .cte("taken")
    )
    numbered = select(
        changes.c.customer_id,
        changes.c.type,
        changes.c.rule_version,
        (
            taken.c.last_sequence
            - func.count().over(partition_by=changes.c.customer_id)
            + func.row_number().over(partition_by=changes.c.customer_id, order_by=changes.c.type)
        ).label("sequence"),
    ).join_from(changes, taken, taken.c.customer_id == changes.c.customer_id)
    numbered_cte = numbered.cte("numbered")
    appended = (
        insert(events)
        .from_select(
            ["id", "type", "customer_id", "sequence", "occurred_at", "data"],
            select(
                func.gen_random_uuid(),
                numbered_cte.c.type,
                numbered_cte.c.customer_id,
                numbered_cte.c.sequence,
                literal(now, DateTime(timezone=True)),
                func.jsonb_build_object(
                    "customer_id",
                    numbered_cte.c.customer_id,
                    "segment_id",
                    literal(segment.id, Uuid()),
                    "segment_name",
                    literal(segment.name, String()),
                    "rule_version",
                    numbered_cte.c.rule_version,
                ).cast(JSONB),
            ),
        )
        .returning(events.c.type)
        .cte("appended")
    )
    return select(
        select(func.count())
        .select_from(appended)
        .where(appended.c.type == ENTERED)
        .scalar_subquery(),
        select(func.count())
        .select_from(appended)
        .where(appended.c.type == EXITED)
        .scalar_subquery(),
    )


def _entered(
    segment: SegmentKey, candidates: Subquery, now: datetime, rule_version: int | None
) -> CTE:
    """Stays begun for ``candidates`` (customer_id) not in the segment now (nor concurrently
    entered by another statement: the unique index of current stays decides)."""
    rows = select(
        candidates.c.customer_id,
        func.gen_random_uuid(),
        literal(segment.id, Uuid()),
        literal(now, DateTime(timezone=True)),
        literal(rule_version, Integer()),
    )
    # A customer in the segment already hits the unique index of current stays: no new stay.
    return (
        pg_insert(memberships)
        .from_select(["customer_id", "id", "segment_id", "entered_at", "rule_version"], rows)
        .on_conflict_do_nothing(index_elements=["segment_id", "customer_id"], index_where=CURRENT)
        .returning(
            memberships.c.customer_id,
            literal(ENTERED, String()).label("type"),
            memberships.c.rule_version,
        )
        .cte("entered")
    )


def _exited(leaving: ColumnElement[bool], now: datetime) -> CTE:
    """Stays ``leaving`` picks (say by primary key, or by segment and customer) end, unless
    they have already ended."""
    return (
        update(memberships)
        .where(CURRENT, leaving)
        .values(exited_at=now)
        .returning(
            memberships.c.customer_id,
            literal(EXITED, String()).label("type"),
            memberships.c.rule_version,
        )
        .cte("exited")
    )


async def _run(conn: Connection, statement: Select[Any]) -> tuple[int, int]:
    entered, exited = (await conn.execute(statement)).one()
    return int(entered), int(exited)


async def refresh(
    conn: Connection,
    segment: SegmentKey,
    rule: Rule,
    now: datetime,
    customer_ids: Sequence[uuid.UUID] | None = None,
) -> tuple[int, int]:
    """Bring a dynamic segment's current stays in line with ``rule``, as one set-based
    statement: customers it matches and not in the segment enter, members it no longer matches
    (or no longer live) exit, and each change appends its event. ``customer_ids`` limits it to
    those customers (an incremental re-evaluation); returns (entered, exited)."""
    found = matching_ids(rule, now)
    stays = select(memberships.c.customer_id, memberships.c.id).where(
        memberships.c.segment_id == segment.id, CURRENT
    )
    if customer_ids is not None:
        found = found.where(customers.c.id.in_(list(customer_ids)))
        stays = stays.where(memberships.c.customer_id.in_(list(customer_ids)))
    matched, current = found.cte("matched"), stays.cte("current")
    # Who moves, as a FULL JOIN of the matches and the current stays: PostgreSQL runs a full
    # join only by hash or merge, so the diff stays linear even when the planner has no
    # statistics on the stays yet (an anti-join planned as a nested loop went quadratic).
    diff = (
        select(
            func.coalesce(matched.c.customer_id, current.c.customer_id).label("customer_id"),
            current.c.id.label("stay_id"),
        )
        .select_from(
            matched.join(current, matched.c.customer_id == current.c.customer_id, full=True)
        )
        .where(or_(matched.c.customer_id.is_(None), current.c.customer_id.is_(None)))
        .cte("diff")
    )
    arriving = select(diff.c.customer_id).where(diff.c.stay_id.is_(None)).subquery()
    entered = _entered(segment, arriving, now, segment.rule_version)
    # A stay ends by its primary key, joined from the diff. Only the primary key and "current"
    # constrain the stays here: with the segment's id too, the planner (no statistics on the
    # stays yet) took the segment's stays for one row and looped over the diff for each of them;
    # and `= ANY(array)` of a subquery is searched linearly per row (both quadratic).
    leaving = and_(
        memberships.c.customer_id == diff.c.customer_id, memberships.c.id == diff.c.stay_id
    )
    if customer_ids is not None:
        leaving = and_(memberships.c.customer_id.in_(list(customer_ids)), leaving)
    exited = _exited(leaving, now)
    changes = union_all(
        select(entered.c.customer_id, entered.c.type, entered.c.rule_version),
        select(exited.c.customer_id, exited.c.type, exited.c.rule_version),
    ).cte("changes")
    return await _run(conn, _with_events(changes, segment, now))


async def add_members(
    conn: Connection, segment: SegmentKey, customer_ids: Sequence[uuid.UUID], now: datetime
) -> set[uuid.UUID]:
    """Begin stays for these live customers (a static segment's members added by hand); returns
    the ones that entered (the others were members already or are not live customers)."""
    given = select(customers.c.id.label("customer_id")).where(
        customers.c.id.in_(list(customer_ids)), LIVE
    )
    entered = _entered(segment, given.subquery(), now, None)
    changes = select(entered.c.customer_id, entered.c.type, entered.c.rule_version).cte("changes")
    statement = _with_events(changes, segment, now).add_columns(
        select(func.array_agg(changes.c.customer_id)).scalar_subquery()
    )
    _entered_count, _exited_count, ids = (await conn.execute(statement)).one()
    return set(ids or ())


async def remove_members(
    conn: Connection, segment: SegmentKey, customer_ids: Sequence[uuid.UUID], now: datetime
) -> set[uuid.UUID]:
    """End these customers' stays; returns the ones that were members."""
    exited = _exited(
        and_(
            memberships.c.segment_id == segment.id,
            memberships.c.customer_id.in_(list(customer_ids)),
        ),
        now,
    )
    changes = select(exited.c.customer_id, exited.c.type, exited.c.rule_version).cte("changes")
    statement = _with_events(changes, segment, now).add_columns(
        select(func.array_agg(changes.c.customer_id)).scalar_subquery()
    )
    _entered_count, _exited_count, ids = (await conn.execute(statement)).one()
    return set(ids or ())


async def live_customer_ids(conn: Connection, customer_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    query = select(customers.c.id).where(customers.c.id.in_(list(customer_ids)), LIVE)
    return set((await conn.execute(query)).scalars())


def members_query(segment_id: uuid.UUID, as_of: datetime | None) -> Select[Any]:
    """The stays current now, or at ``as_of`` (begun by then and not yet ended), oldest first."""
    when: ColumnElement[bool]
    if as_of is None:
        when = CURRENT
    else:
        when = and_(
            memberships.c.entered_at <= as_of,
            or_(memberships.c.exited_at.is_(None), memberships.c.exited_at > as_of),
        )
    return (
        select(*(memberships.c[name] for name in MembershipOut.model_fields), memberships.c.id)
        .select_from(memberships)
        .where(memberships.c.segment_id == segment_id, when)
        .order_by(memberships.c.entered_at, memberships.c.id)
    )


def membership_from_row(row: Any) -> MembershipOut:
    return MembershipOut.from_stored(row._mapping)


async def get_many(conn: Connection, ids: Sequence[uuid.UUID]) -> list[SegmentOut]:
    if not ids:
        return []
    query = select(*_STORED).where(segments.c.id.in_(list(ids)))
    return [_segment(row) for row in await conn.execute(query)]


async def segments_of_customers(
    conn: Connection, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CustomerSegmentOut]]:
    """Each customer's current stays, oldest first, with the segment's name and kind."""
    found: dict[uuid.UUID, list[CustomerSegmentOut]] = {}
    if not customer_ids:
        return found
    query = (
        select(
            memberships.c.customer_id,
            memberships.c.segment_id,
            segments.c.name,
            segments.c.kind,
            memberships.c.entered_at,
            memberships.c.rule_version,
        )
        .join_from(memberships, segments, segments.c.id == memberships.c.segment_id)
        .where(memberships.c.customer_id.in_(list(customer_ids)), CURRENT)
        .order_by(memberships.c.entered_at, memberships.c.segment_id)
    )
    for row in await conn.execute(query):
        found.setdefault(row.customer_id, []).append(CustomerSegmentOut.from_stored(row._mapping))
    return found


async def customer_segments(conn: Connection, customer_id: uuid.UUID) -> list[CustomerSegmentOut]:
    return (await segments_of_customers(conn, [customer_id])).get(customer_id, [])


async def dynamic_segment_ids(conn: Connection) -> list[uuid.UUID]:
    query = select(segments.c.id).where(segments.c.kind == "dynamic").order_by(segments.c.id)
    return list((await conn.execute(query)).scalars())


follow_state: Table = SegmentFollowState.__table__  # type: ignore[assignment]

# The customers of the next stamped events after the follow position (a segment's own events
# move nothing a rule reads), and the position the batch ends at; the state row is locked, so one
# follower at a time reads a batch, and nobody else advances it meanwhile.
_NEXT_BATCH = text(
    """
    WITH state AS (
        SELECT last_position FROM segment_follow_state WHERE id = 1 FOR UPDATE
    ),
    batch AS (
        SELECT e.position, e.customer_id, e.type
        FROM events e
        WHERE e.position > (SELECT last_position FROM state)
        ORDER BY e.position
        LIMIT :batch_size
    )
    SELECT (SELECT last_position FROM state) AS last_position,
           (SELECT max(position) FROM batch) AS batch_end,
           (SELECT array_agg(DISTINCT customer_id) FROM batch
             WHERE customer_id IS NOT NULL AND NOT starts_with(type, 'segment.')) AS customer_ids
    """
)


async def next_follow_batch(
    conn: Connection, batch_size: int
) -> tuple[int | None, list[uuid.UUID]]:
    """The position the next batch of events ends at (None: no new event) and the customers they
    are about; the follow state stays locked for the transaction."""
    row = (await conn.execute(_NEXT_BATCH, {"batch_size": batch_size})).one()
    return row.batch_end, list(row.customer_ids or ())


async def advance_follow(conn: Connection, position: int) -> None:
    await conn.execute(
        update(follow_state).where(follow_state.c.id == 1).values(last_position=position)
    )


async def lock_dynamic_segments(conn: Connection) -> list[DynamicSegment]:
    """Every dynamic segment, its row share-locked (in id order): a rule change or a full refresh
    waits for this transaction, and this one for theirs."""
    query = (
        select(segments.c.id, segments.c.name, segments.c.rule, segments.c.rule_version)
        .where(segments.c.kind == "dynamic")
        .order_by(segments.c.id)
        .with_for_update(read=True)
    )
    return [
        DynamicSegment(row.id, row.name, Rule.parse(row.rule), row.rule_version)
        for row in await conn.execute(query)
    ]


EXPORT_COLUMNS = (
    "customer_id",
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "region",
    "city",
    "entered_at",
    "rule_version",
)
# Times as RFC 3339 UTC text, made by PostgreSQL: formatting is most of an export's cost.
_RFC3339 = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def _export_columns(with_pii: bool) -> list[ColumnElement[Any]]:
    """The export's columns as text (``EXPORT_COLUMNS``), email and phone NULL unless
    ``with_pii``."""
    hidden = literal(None, String())
    return [
        cast(memberships.c.customer_id, String()).label("customer_id"),
        customers.c.external_id,
        customers.c.first_name,
        customers.c.last_name,
        (customers.c.email if with_pii else hidden).label("email"),
        (customers.c.phone if with_pii else hidden).label("phone"),
        customers.c.country,
        customers.c.region,
        customers.c.city,
        func.to_char(func.timezone("UTC", memberships.c.entered_at), _RFC3339).label("entered_at"),
        memberships.c.rule_version,
    ]


async def export_rows(
    conn: Connection, segment_id: uuid.UUID, partition: int, *, with_pii: bool
) -> AsyncIterator[Sequence[Any]]:
    """A segment's current members with the profile fields an export carries (text, but the
    rule version), in partitions of ``partition`` rows from a server-side cursor (one statement,
    one snapshot; the caller's transaction stays open while it is read). In no particular order:
    sorting would hold them all."""
    query = (
        select(*_export_columns(with_pii))
        .join_from(memberships, customers, customers.c.id == memberships.c.customer_id)
        .where(memberships.c.segment_id == segment_id, CURRENT)
    )
    result = await conn.stream(query.execution_options(yield_per=partition))
    async for rows in result.partitions(partition):
        yield rows
