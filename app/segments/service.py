"""Segment use cases, shared by REST, GraphQL and jobs. Signature: (conn, caller, payload).

A dynamic segment's membership is materialized: creating it, and changing its rule, compare every
customer with the rule in the same transaction (one set-based statement, ``repository.refresh``);
the scheduled refresh and ``POST /v1/segments/{id}/refresh`` do the same later, so figures that
move with time (windows, metrics after an analytics refresh) are caught up.
"""

import csv
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from pydantic_core import to_json

from app.core import clock
from app.core.auth import Caller
from app.core.errors import Conflict, KehuError, NotFound, ValidationFailed
from app.core.http import check_version
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.customers import repository as customers
from app.customers import service as customer_service
from app.customers.schemas import CustomerSort
from app.customers.search import CustomerQuery
from app.db import Connection
from app.rules import service as rules
from app.segments import repository
from app.segments.schemas import (
    CustomerSegmentOut,
    ExportFormat,
    MemberChangeResult,
    MembersChange,
    MembersChangeResult,
    MembershipOut,
    MemberStatus,
    SegmentCreate,
    SegmentKind,
    SegmentOut,
    SegmentPreview,
    SegmentPreviewOut,
    SegmentRefreshOut,
    SegmentSort,
    SegmentUpdate,
)


def _name_taken(name: str) -> KehuError:
    return Conflict(f"A segment is already named {name!r}.", code="segment_name_taken")


async def _found(conn: Connection, segment_id: uuid.UUID, *, lock: bool = False) -> SegmentOut:
    segment = await repository.get(conn, segment_id, lock=lock)
    if segment is None:
        raise NotFound(f"No segment {segment_id}.", code="segment_not_found")
    return segment


async def create_segment(conn: Connection, caller: Caller, payload: SegmentCreate) -> SegmentOut:
    caller.require("segments:write")
    if payload.rule is not None:
        rules.check_may_run(caller, payload.rule)
    now = clock.now()
    segment_id = new_id()
    created = await repository.insert_segment(
        conn,
        {
            "id": segment_id,
            "name": payload.name,
            "description": payload.description,
            "kind": payload.kind.value,
            "rule": None if payload.rule is None else payload.rule.source,
            "created_at": now,
            "updated_at": now,
        },
    )
    if not created:
        raise _name_taken(payload.name)
    if payload.rule is not None:
        await _refresh(conn, segment_id, now)
    return await _found(conn, segment_id)


async def get_segment(conn: Connection, caller: Caller, segment_id: uuid.UUID) -> SegmentOut:
    caller.require("segments:read")
    return await _found(conn, segment_id)


async def get_segments(
    conn: Connection, caller: Caller, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SegmentOut]:
    caller.require("segments:read")
    return {segment.id: segment for segment in await repository.get_many(conn, ids)}


async def segments_of_customers(
    conn: Connection, caller: Caller, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CustomerSegmentOut]]:
    """The current segments of each customer (GraphQL ``Customer.segments``: one query for all
    the customers of a request)."""
    caller.require("segments:read")
    return await repository.segments_of_customers(conn, customer_ids)


async def list_segments(
    conn: Connection, caller: Caller, *, sort: SegmentSort, limit: int, cursor: str | None
) -> Page[SegmentOut]:
    caller.require("segments:read")
    page = await fetch_page(
        conn, repository.list_query(sort), limit=limit, cursor=cursor, sort=sort.value
    )
    return page.mapped(repository.segment_from_row)


async def update_segment(
    conn: Connection,
    caller: Caller,
    segment_id: uuid.UUID,
    payload: SegmentUpdate,
    expected_version: int | None,
) -> SegmentOut:
    caller.require("segments:write")
    segment = await _found(conn, segment_id, lock=True)
    check_version(segment.version, expected_version, "segment")
    given = payload.model_fields_set
    values: dict[str, object] = {}
    if "name" in given:
        if payload.name is None:
            raise _invalid("name", "must not be null")
        if payload.name != segment.name and await repository.name_taken(
            conn, payload.name, other_than=segment_id
        ):
            raise _name_taken(payload.name)
        values["name"] = payload.name
    if "description" in given:
        values["description"] = payload.description
    rule_changed = False
    if "rule" in given:
        if segment.kind is SegmentKind.static:
            raise _invalid("rule", "a static segment has no rule (its members are listed)")
        if payload.rule is None:
            raise _invalid("rule", "a dynamic segment needs a rule")
        rules.check_may_run(caller, payload.rule)
        if segment.rule is None or payload.rule.source != segment.rule.source:
            rule_changed = True
            values["rule"] = payload.rule.source
            values["rule_version"] = segment.rule_version + 1
    if not values:
        return segment
    now = clock.now()
    await repository.save_changes(conn, segment_id, {**values, "updated_at": now})
    if rule_changed:
        await _refresh(conn, segment_id, now)
    return await _found(conn, segment_id)


def _invalid(field: str, message: str) -> KehuError:
    return ValidationFailed(
        f"The {field} is not valid: {message}.",
        errors=[{"field": f"body.{field}", "message": message}],
    )


async def delete_segment(
    conn: Connection, caller: Caller, segment_id: uuid.UUID, expected_version: int | None
) -> None:
    caller.require("segments:write")
    segment = await _found(conn, segment_id, lock=True)
    check_version(segment.version, expected_version, "segment")
    await repository.delete_segment(conn, segment_id)


async def _refresh(conn: Connection, segment_id: uuid.UUID, now: datetime) -> SegmentRefreshOut:
    """Compare every customer with the segment's rule as of ``now``, under the segment's row
    lock: refreshes, rule changes and member changes of one segment take turns, so the count read
    with the lock, moved by what this refresh moved, is the count after it."""
    segment = await _found(conn, segment_id, lock=True)
    if segment.rule is None:
        raise Conflict("A static segment has no rule to refresh.", code="segment_is_static")
    entered, exited = await repository.refresh(conn, segment, segment.rule, now)
    await repository.mark_refreshed(conn, segment_id, now)
    return SegmentRefreshOut(
        segment_id=segment_id,
        entered=entered,
        exited=exited,
        member_count=segment.member_count + entered - exited,
    )


async def refresh_segment(
    conn: Connection, caller: Caller, segment_id: uuid.UUID, *, now: datetime | None = None
) -> SegmentRefreshOut:
    """Compare every customer with a dynamic segment's rule now; a static segment has nothing
    to compare (409)."""
    caller.require("segments:write")
    return await _refresh(conn, segment_id, now or clock.now())


async def refresh_all(conn: Connection) -> list[SegmentRefreshOut]:
    """The scheduled refresh: every dynamic segment, one after another, in this transaction."""
    return [
        await _refresh(conn, segment_id, clock.now())
        for segment_id in await repository.dynamic_segment_ids(conn)
    ]


async def preview(conn: Connection, caller: Caller, payload: SegmentPreview) -> SegmentPreviewOut:
    caller.require("segments:read")
    rules.check_may_run(caller, payload.rule)
    now = clock.now()
    count = await repository.count_matching(conn, payload.rule, now)
    sample = []
    if payload.sample:
        query = customers.list_query(
            CustomerQuery(rule=payload.rule),
            CustomerSort.created_at_desc,
            q_names_only=True,
            now=now,
        ).limit(payload.sample)
        sample = [
            customer_service.view(customers.customer_from_row(row), caller)
            for row in await conn.execute(query)
        ]
    return SegmentPreviewOut(count=count, sample=sample)


async def list_members(
    conn: Connection,
    caller: Caller,
    segment_id: uuid.UUID,
    *,
    as_of: datetime | None,
    limit: int,
    cursor: str | None,
) -> Page[MembershipOut]:
    caller.require("segments:read")
    await _found(conn, segment_id)
    sort = "entered_at" if as_of is None else f"entered_at@{as_of.isoformat()}"
    page = await fetch_page(
        conn, repository.members_query(segment_id, as_of), limit=limit, cursor=cursor, sort=sort
    )
    return page.mapped(repository.membership_from_row)


async def customer_segments(
    conn: Connection, caller: Caller, customer_id: uuid.UUID
) -> list[CustomerSegmentOut]:
    caller.require("segments:read")
    await customer_service.get_customer(conn, caller, customer_id)
    return await repository.customer_segments(conn, customer_id)


async def change_members(
    conn: Connection, caller: Caller, segment_id: uuid.UUID, payload: MembersChange, *, add: bool
) -> MembersChangeResult:
    """Add (``add``) or remove a static segment's members, one result per customer given."""
    caller.require("segments:write")
    segment = await _found(conn, segment_id, lock=True)
    if segment.kind is not SegmentKind.static:
        raise Conflict(
            "A dynamic segment's members follow its rule; only a static segment's are listed.",
            code="segment_is_dynamic",
        )
    ids = list(dict.fromkeys(payload.customer_ids))
    now = clock.now()
    live = await repository.live_customer_ids(conn, ids)
    if add:
        changed = await repository.add_members(conn, segment, ids, now)
    else:
        changed = await repository.remove_members(conn, segment, ids, now)
    results = []
    status: MemberStatus
    for index, customer_id in enumerate(payload.customer_ids):
        if customer_id not in live:
            status = MemberStatus.customer_not_found
        elif add:
            status = MemberStatus.added if customer_id in changed else MemberStatus.already_member
        else:
            status = MemberStatus.removed if customer_id in changed else MemberStatus.not_member
        if status in (MemberStatus.added, MemberStatus.removed):
            # A customer listed twice is changed once: a later mention reports what it met.
            changed.discard(customer_id)
        results.append(MemberChangeResult(index=index, customer_id=customer_id, status=status))
    refreshed = await _found(conn, segment_id)
    return MembersChangeResult(results=results, member_count=refreshed.member_count)


async def follow(conn: Connection, *, batch_size: int = 1_000) -> tuple[int, int] | None:
    """One step of the follower (``app/segments/follower.py``), in the caller's transaction:
    the customers of the next batch of stamped events are compared with every dynamic segment's
    rule, and the follow position moves past the batch. Returns (entered, exited), or None when
    there was no new event."""
    end, customer_ids = await repository.next_follow_batch(conn, batch_size)
    if end is None:
        return None
    entered = exited = 0
    if customer_ids:
        now = clock.now()
        for segment in await repository.lock_dynamic_segments(conn):
            moved_in, moved_out = await repository.refresh(
                conn, segment, segment.rule, now, customer_ids=customer_ids
            )
            entered, exited = entered + moved_in, exited + moved_out
    await repository.advance_follow(conn, end)
    return entered, exited


EXPORT_PAGE = 5_000


async def start_export(conn: Connection, caller: Caller, segment_id: uuid.UUID) -> SegmentOut:
    """Check an export may run before its first byte is sent (a stream cannot turn into a
    problem response once it has begun)."""
    caller.require("segments:read", "customers:read")
    return await _found(conn, segment_id)


async def export_members(
    conn: Connection, caller: Caller, segment_id: uuid.UUID, *, export_format: ExportFormat
) -> AsyncIterator[bytes]:
    """A segment's current members as CSV (a header row first) or NDJSON, a chunk of bytes per
    ``EXPORT_PAGE`` members, read in one snapshot of ``conn``'s transaction. Email and phone are
    empty without pii:read."""
    caller.require("segments:read", "customers:read")
    as_json = export_format is ExportFormat.ndjson
    columns = repository.EXPORT_COLUMNS
    if not as_json:
        yield (",".join(columns) + "\n").encode()
    async for rows in repository.export_rows(
        conn, segment_id, EXPORT_PAGE, with_pii=caller.has("pii:read")
    ):
        if as_json:
            yield b"".join(to_json(dict(zip(columns, row, strict=True))) + b"\n" for row in rows)
        else:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            yield out.getvalue().encode()
