"""Interaction use cases, shared by REST, GraphQL, the batch and jobs. Signature: (conn, caller, payload).

Every function returns the stored interaction (``InteractionOut``); nothing of it is PII-redacted
(interactions carry no field marked PII).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy.exc import IntegrityError

from app.cases import service as cases
from app.core import clock
from app.core.auth import Caller
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.http import check_version
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.customers.schemas import check_attribute_totals
from app.db import Connection
from app.events import service as events
from app.interactions import repository
from app.interactions.enums import Direction, InteractionStatus
from app.interactions.schemas import (
    FUTURE_TOLERANCE,
    FollowUpFilter,
    InteractionCreate,
    InteractionFilter,
    InteractionOut,
    InteractionSort,
    InteractionUpdate,
)

# A planned follow-up may be completed or cancelled; completed and cancelled are final.
ALLOWED_STATUS_CHANGES: dict[InteractionStatus, frozenset[InteractionStatus]] = {
    InteractionStatus.PLANNED: frozenset(
        {InteractionStatus.COMPLETED, InteractionStatus.CANCELLED}
    ),
    InteractionStatus.COMPLETED: frozenset(),
    InteractionStatus.CANCELLED: frozenset(),
}
# Follow-ups announced per transaction of the job (it loops until none are left).
ANNOUNCE_BATCH = 500


def snapshot(interaction: InteractionOut) -> dict[str, Any]:
    """The interaction as events carry it: every stored field, JSON-ready."""
    return interaction.model_dump(mode="json")


def _customer_not_found(customer_id: uuid.UUID) -> ValidationFailed:
    return ValidationFailed(
        f"No customer {customer_id}.",
        code="customer_not_found",
        errors=[{"field": "body.customer_id", "message": "no such customer"}],
    )


def _case_not_found(case_id: uuid.UUID) -> ValidationFailed:
    return ValidationFailed(
        f"No case {case_id} of this customer.",
        code="case_not_found",
        errors=[{"field": "body.case_id", "message": "no such case of this customer"}],
    )


def _order_not_found(order_id: uuid.UUID) -> ValidationFailed:
    return ValidationFailed(
        f"No order {order_id} of this customer.",
        code="order_not_found",
        errors=[{"field": "body.order_id", "message": "no such order of this customer"}],
    )


def _is_response(interaction: InteractionOut) -> bool:
    """An outbound, completed contact on a case: an answer to the customer, for the case's SLA."""
    return (
        interaction.case_id is not None
        and interaction.direction is Direction.OUTBOUND
        and interaction.status is InteractionStatus.COMPLETED
    )


async def _note_response(conn: Connection, interaction: InteractionOut) -> None:

    assert interaction.case_id is not None
    await cases.note_response(
        conn,
        customer_id=interaction.customer_id,
        case_id=interaction.case_id,
        at=interaction.occurred_at,
    )


def _create_values(payload: InteractionCreate, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(repository.INSERTABLE)
    values.update(payload.model_dump(exclude_none=True))
    occurred_at = payload.occurred_at or now
    values.update(
        id=new_id(),
        status=payload.status.value,
        occurred_at=occurred_at,
        completed_at=occurred_at if payload.status is InteractionStatus.COMPLETED else None,
        attributes=payload.attributes or {},
        version=1,
        created_at=now,
        updated_at=now,
    )
    return values


def _refused(exc: IntegrityError, payload: InteractionCreate) -> Exception:
    """What a foreign key violation of a create means (the customer or case went meanwhile)."""
    constraint = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
    if constraint == repository.CASE_FK and payload.case_id is not None:
        return _case_not_found(payload.case_id)
    if constraint == repository.ORDER_FK and payload.order_id is not None:
        return _order_not_found(payload.order_id)
    if constraint == repository.CUSTOMER_FK:
        return _customer_not_found(payload.customer_id)
    return exc


async def log_interaction(
    conn: Connection, caller: Caller, payload: InteractionCreate, *, only_write: bool = True
) -> tuple[InteractionOut, bool]:
    """Log an interaction; returns it and whether it is new. The same (source, external_id) for
    the same customer returns the stored one (False; nothing written, no event).

    ``only_write``: this is the unit of work's only write (REST, GraphQL), so the insert with its
    event runs as one statement without BEGIN/COMMIT unless a case must note the response."""
    caller.require("interactions:write")
    values = _create_values(payload, clock.now())
    # Every column is given: the interaction as it will be stored, for the event and the answer.
    interaction = InteractionOut.from_stored(values)
    event = events.customer_event("interaction.logged", snapshot(interaction))
    responds = _is_response(interaction)
    try:
        created = await repository.insert_with_event(
            conn, values, event, only_write=only_write and not responds
        )
    except IntegrityError as exc:
        raise _refused(exc, payload) from None
    if created:
        if responds:
            await _note_response(conn, interaction)
        return interaction, True
    return await _not_inserted(conn, payload), False


async def _not_inserted(conn: Connection, payload: InteractionCreate) -> InteractionOut:
    """Why a create wrote nothing: the stored interaction of its (source, external_id), or the
    error to answer."""
    if not await repository.customer_is_live(conn, payload.customer_id):
        raise _customer_not_found(payload.customer_id)
    if payload.case_id is not None and not await repository.is_case_of(
        conn, payload.customer_id, payload.case_id, lock=False
    ):
        raise _case_not_found(payload.case_id)
    if payload.order_id is not None and not await repository.is_order_of(
        conn, payload.customer_id, payload.order_id, lock=False
    ):
        raise _order_not_found(payload.order_id)
    if payload.source is not None and payload.external_id is not None:
        stored = await repository.get_by_external_id(conn, payload.source, payload.external_id)
        if stored is not None and stored.customer_id == payload.customer_id:
            return stored
        if stored is not None:
            raise Conflict(
                f"({payload.source!r}, {payload.external_id!r}) is an interaction of another "
                "customer.",
                code="external_id_conflict",
            )
    # Its pair was taken by a write that has since gone away: nothing to return.
    raise Conflict("The interaction conflicts with a concurrent write; retry it.")


async def get_interaction(
    conn: Connection, caller: Caller, interaction_id: uuid.UUID
) -> InteractionOut:
    caller.require("interactions:read")
    interaction = await repository.get(conn, interaction_id)
    if interaction is None:
        raise NotFound(f"No interaction {interaction_id}.", code="interaction_not_found")
    return interaction


async def find_interaction(
    conn: Connection, caller: Caller, interaction_id: uuid.UUID
) -> InteractionOut | None:
    caller.require("interactions:read")
    return await repository.get(conn, interaction_id)


async def get_interactions(
    conn: Connection, caller: Caller, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, InteractionOut]:
    caller.require("interactions:read")
    return {i.id: i for i in await repository.get_many(conn, ids)}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        "The request is not valid; see errors[].",
        errors=[{"field": f"body.{field}", "message": message}],
    )


def _merged_attributes(current: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(current)
    for key, item in (given or {}).items():
        if item is None:
            merged.pop(key, None)
        else:
            merged[key] = item
    try:
        check_attribute_totals(merged)
    except ValueError as exc:
        raise ValidationFailed(
            "The attributes after this change would be over the limit.",
            errors=[{"field": "body.attributes", "message": str(exc)}],
        ) from None
    return merged


def planned_changes(
    current: InteractionOut, payload: InteractionUpdate, now: datetime
) -> dict[str, Any]:
    """The columns to write for ``payload`` (only those whose value really changes), with the
    status rules applied."""
    given = payload.model_dump(exclude_unset=True)
    status = InteractionStatus(given.get("status", current.status))
    if status is not current.status:
        allowed = ALLOWED_STATUS_CHANGES[current.status]
        if status not in allowed:
            names = ", ".join(sorted(allowed)) or "none (it is final)"
            raise Conflict(
                f"An interaction cannot go from {current.status.value} to {status.value}; "
                f"allowed: {names}.",
                code="illegal_status_change",
            )
        if status is InteractionStatus.COMPLETED:
            given["completed_at"] = now
            given["occurred_at"] = given.get("occurred_at") or now
    if "attributes" in given:
        given["attributes"] = _merged_attributes(current.attributes, given["attributes"])
    if (
        "due_at" in given
        and given["due_at"] != current.due_at
        and (status is not InteractionStatus.PLANNED)
    ):
        raise _invalid("due_at", "only a planned follow-up has due_at")
    if status is InteractionStatus.PLANNED and given.get("due_at", current.due_at) is None:
        raise _invalid("due_at", "a planned follow-up needs due_at")
    occurred_at = given.get("occurred_at")
    if (
        status is InteractionStatus.COMPLETED
        and occurred_at is not None
        and occurred_at > now + FUTURE_TOLERANCE
    ):
        raise _invalid(
            "occurred_at",
            "must not be more than 5 minutes in the future for a completed interaction",
        )
    before = current.model_dump(mode="json")
    values = {
        field: value for field, value in given.items() if to_jsonable_python(value) != before[field]
    }
    if "due_at" in values and status is InteractionStatus.PLANNED:
        # A new due date: announce it again when it comes (follow_up.due).
        values["due_announced_at"] = None
    return values


async def update_interaction(
    conn: Connection,
    caller: Caller,
    interaction_id: uuid.UUID,
    payload: InteractionUpdate,
    expected_version: int | None = None,
) -> InteractionOut:
    caller.require("interactions:write")
    current = await repository.get_for_update(conn, interaction_id)
    if current is None:
        raise NotFound(f"No interaction {interaction_id}.", code="interaction_not_found")
    check_version(current.version, expected_version, "interaction")
    now = clock.now()
    values = planned_changes(current, payload, now)
    if not values:
        return current
    case_id = values.get("case_id")
    if case_id is not None and not await repository.is_case_of(
        conn, current.customer_id, case_id, lock=True
    ):
        raise _case_not_found(case_id)
    order_id = values.get("order_id")
    if order_id is not None and not await repository.is_order_of(
        conn, current.customer_id, order_id, lock=True
    ):
        raise _order_not_found(order_id)
    updated = await repository.save_changes(
        conn, current.customer_id, current.id, {**values, "updated_at": now}
    )
    before = current.model_dump(mode="json")
    after = snapshot(updated)
    changes = {field: [before[field], after[field]] for field in values if field in before}
    await events.record(
        conn, "interaction.updated", customer_id=updated.customer_id, data=after, changes=changes
    )
    if _is_response(updated) and (not _is_response(current) or current.case_id != updated.case_id):
        await _note_response(conn, updated)
    return updated


async def list_interactions(
    conn: Connection,
    caller: Caller,
    filters: InteractionFilter,
    *,
    sort: InteractionSort,
    limit: int,
    cursor: str | None,
) -> Page[InteractionOut]:
    caller.require("interactions:read")
    query = repository.list_query(filters, sort)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort=sort.value)
    return page.mapped(repository.interaction_from_row)


FOLLOW_UP_SORT = "due_at"


async def list_follow_ups(
    conn: Connection,
    caller: Caller,
    filters: FollowUpFilter,
    *,
    limit: int,
    cursor: str | None,
) -> Page[InteractionOut]:
    caller.require("interactions:read")
    query = repository.follow_ups_query(filters)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort=FOLLOW_UP_SORT)
    return page.mapped(repository.interaction_from_row)


async def announce_due_follow_ups(
    conn: Connection, *, now: datetime, limit: int = ANNOUNCE_BATCH
) -> int:
    """Emit ``follow_up.due`` once for up to ``limit`` planned follow-ups due by ``now`` and not
    announced yet, in the caller's transaction; how many. Concurrent runs never announce one
    follow-up twice (each is claimed by one conditional UPDATE)."""
    claimed = await repository.claim_due_follow_ups(conn, now, limit)
    # In customer order: each event locks its customer's sequence row, and two runs taking those
    # locks in different orders deadlocked (seen with four concurrent runs).
    for follow_up in sorted(claimed, key=lambda f: (f.customer_id, f.id)):
        await events.record(
            conn, "follow_up.due", customer_id=follow_up.customer_id, data=snapshot(follow_up)
        )
    return len(claimed)
