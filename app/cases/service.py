"""Case use cases, shared by REST, GraphQL and jobs. Signature: (conn, caller, payload).

A case moves only along ``enums.TRANSITIONS``; each move is one row of its history, written with the
case row locked, so concurrent moves of one case take turns and the second sees the first's result.
The SLA clock is ``sla``'s (pure functions); this module reads the policy, writes what they return
and records the events.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python

from app.cases import repository, sla
from app.cases.enums import DONE, TRANSITIONS, CasePriority, CaseStatus
from app.cases.schemas import (
    CaseCreate,
    CaseFilter,
    CaseOut,
    CaseSort,
    CaseTransitionCreate,
    CaseTransitionOut,
    CaseUpdate,
    SlaPolicyOut,
    SlaPolicyUpdate,
)
from app.core import clock
from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.http import check_version
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.customers.schemas import check_attribute_totals
from app.db import Connection
from app.events import service as events
from app.feedback import service as feedback


def snapshot(case: CaseOut) -> dict[str, Any]:
    """The case as events carry it: every stored field, JSON-ready."""
    return case.model_dump(mode="json")


def _not_found(case_id: uuid.UUID) -> NotFound:
    return NotFound(f"No case {case_id}.", code="case_not_found")


async def _policy(conn: Connection, priority: str) -> SlaPolicyOut:
    found = await repository.policy(conn, priority)
    if found is None:  # pragma: no cover - the migration seeds one per priority
        raise NotFound(f"No SLA policy for priority {priority}.", code="sla_policy_not_found")
    return found


async def _record_transition(
    conn: Connection,
    caller: Caller | None,
    case: CaseOut,
    from_status: CaseStatus | None,
    reason: str | None,
    at: datetime,
) -> None:
    await repository.insert_transition(
        conn,
        {
            "id": new_id(),
            "customer_id": case.customer_id,
            "case_id": case.id,
            "from_status": from_status,
            "to_status": case.status,
            "reason": reason,
            "actor_key_id": caller.key_id if caller is not None else None,
            "actor": caller.name if caller is not None else None,
            "at": at,
        },
    )


# ------------------------------------------------------------------------------------------- cases


async def open_case(conn: Connection, caller: Caller, payload: CaseCreate) -> CaseOut:
    caller.require("cases:write")
    if not await repository.customer_is_live(conn, payload.customer_id):
        raise ValidationFailed(
            f"No customer {payload.customer_id}.",
            code="customer_not_found",
            errors=[{"field": "body.customer_id", "message": "no such customer"}],
        )
    now = clock.now()
    policy = await _policy(conn, payload.priority)
    values: dict[str, Any] = {
        **payload.model_dump(exclude_none=True),
        "id": new_id(),
        "attributes": payload.attributes or {},
        "status": CaseStatus.OPEN,
        "opened_at": now,
        "created_at": now,
        "updated_at": now,
        **sla.opening(now, policy),
    }
    case = await repository.insert_case(conn, values)
    await _record_transition(conn, caller, case, None, None, now)
    await events.record(conn, "case.opened", customer_id=case.customer_id, data=snapshot(case))
    return case


async def get_case(conn: Connection, caller: Caller, case_id: uuid.UUID) -> CaseOut:
    caller.require("cases:read")
    case = await repository.get(conn, case_id)
    if case is None:
        raise _not_found(case_id)
    return case


async def find_case(conn: Connection, caller: Caller, case_id: uuid.UUID) -> CaseOut | None:
    caller.require("cases:read")
    return await repository.get(conn, case_id)


async def get_cases(
    conn: Connection, caller: Caller, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CaseOut]:
    caller.require("cases:read")
    return {c.id: c for c in await repository.get_many(conn, ids)}


async def list_cases(
    conn: Connection,
    caller: Caller,
    filters: CaseFilter,
    *,
    sort: CaseSort,
    limit: int,
    cursor: str | None,
) -> Page[CaseOut]:
    caller.require("cases:read")
    query = repository.list_query(filters, sort)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort=sort.value)
    return page.mapped(repository.case_from_row)


async def _locked(conn: Connection, case_id: uuid.UUID) -> CaseOut:
    case = await repository.get_for_update(conn, case_id)
    if case is None:
        raise _not_found(case_id)
    return case


def _planned_changes(case: CaseOut, payload: CaseUpdate) -> dict[str, Any]:
    """The columns to write for ``payload`` (only those whose value really changes)."""
    given = payload.model_dump(exclude_unset=True)
    current = case.model_dump(mode="json", include=set(given))
    values: dict[str, Any] = {}
    for field, value in given.items():
        if field == "attributes":
            merged = dict(case.attributes)
            for key, item in (value or {}).items():
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
            value = merged
        if to_jsonable_python(value) != current[field]:
            values[field] = value
    return values


async def update_case(
    conn: Connection,
    caller: Caller,
    case_id: uuid.UUID,
    payload: CaseUpdate,
    expected_version: int | None = None,
) -> CaseOut:
    caller.require("cases:write")
    case = await _locked(conn, case_id)
    check_version(case.version, expected_version, "case")
    values = _planned_changes(case, payload)
    if not values:
        return case
    now = clock.now()
    clock_values: dict[str, Any] = {}
    if "priority" in values:
        old = await _policy(conn, case.priority)
        new = await _policy(conn, values["priority"])
        clock_values = sla.new_priority(case, now, old, new)
    before = case.model_dump(mode="json", include=set(values) | set(clock_values))
    updated = await repository.save_changes(
        conn, case, {**values, **clock_values, "updated_at": now}
    )
    after = updated.model_dump(mode="json", include=set(before))
    changes = {field: [before[field], after[field]] for field in before}
    await events.record(
        conn,
        "case.updated",
        customer_id=updated.customer_id,
        data=snapshot(updated),
        changes=changes,
    )
    return updated


def allowed_targets(status: CaseStatus) -> list[str]:
    return [target.value for target in TRANSITIONS[status]]


def _check_move(case: CaseOut, to: CaseStatus, now: datetime) -> None:
    allowed = allowed_targets(case.status)
    if to.value not in allowed:
        raise Conflict(
            f"A case in status {case.status.value} cannot move to {to.value}; it can move to: "
            f"{', '.join(allowed)}.",
            code="illegal_transition",
            extensions={"allowed": allowed, "current_status": case.status.value},
        )
    if to == CaseStatus.OPEN and case.status in DONE:
        window = timedelta(days=get_settings().case_reopen_window_days)
        done_at = case.closed_at or case.resolved_at
        if done_at is not None and now - done_at > window:
            raise Conflict(
                f"The case was {case.status.value} on {done_at.isoformat()}, more than "
                f"{window.days} days ago: it can no longer be reopened; open a new case.",
                code="reopen_window_expired",
            )


async def transition_case(
    conn: Connection, caller: Caller, case_id: uuid.UUID, payload: CaseTransitionCreate
) -> CaseOut:
    """Move the case to ``payload.to`` (a 409 ``illegal_transition`` off the state machine)."""
    caller.require("cases:write")
    case = await _locked(conn, case_id)
    now = clock.now()
    _check_move(case, payload.to, now)
    policy = await _policy(conn, case.priority)
    values = sla.transition(case, payload.to, now, policy)
    if payload.resolution is not None:
        values["resolution"] = payload.resolution.model_dump(mode="json")
    updated = await repository.save_changes(conn, case, {**values, "updated_at": now})
    await _record_transition(conn, caller, updated, case.status, payload.reason, now)
    data = snapshot(updated)
    await events.record(
        conn,
        "case.status_changed",
        customer_id=updated.customer_id,
        data={**data, "reason": payload.reason},
        changes={"status": [case.status.value, updated.status.value]},
    )
    if updated.status == CaseStatus.RESOLVED:
        resolved: dict[str, Any] = {**data, "survey": None}
        if payload.request_survey:
            survey = await feedback.issue_survey(
                conn, customer_id=updated.customer_id, case_id=updated.id
            )
            resolved["survey"] = {
                "id": str(survey.id),
                "token": survey.token,
                "expires_at": survey.expires_at.isoformat(),
            }
        await events.record(conn, "case.resolved", customer_id=updated.customer_id, data=resolved)
    return updated


async def list_transitions(
    conn: Connection,
    caller: Caller,
    case_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[CaseTransitionOut]:
    caller.require("cases:read")
    case = await repository.get(conn, case_id)
    if case is None:
        raise _not_found(case_id)
    query = repository.transitions_query(case.customer_id, case.id)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort="at")
    return page.mapped(repository.transition_from_row)


async def transitions_of(
    conn: Connection, caller: Caller, cases: Sequence[CaseOut]
) -> dict[uuid.UUID, list[CaseTransitionOut]]:
    """The histories of these cases, oldest first, by case id (one query)."""
    caller.require("cases:read")
    found: dict[uuid.UUID, list[CaseTransitionOut]] = {c.id: [] for c in cases}
    for transition in await repository.transitions_of(conn, [(c.customer_id, c.id) for c in cases]):
        found[transition.case_id].append(transition)
    return found


async def note_response(
    conn: Connection, *, customer_id: uuid.UUID, case_id: uuid.UUID, at: datetime
) -> None:
    """An outbound response to the case happened at ``at`` (interactions call this when they log
    one linked to the case): the first one sets ``first_responded_at`` and
    ``first_response_seconds`` (business seconds since opening, pauses excluded); later ones, or
    one for a case that no longer exists, change nothing."""
    case = await repository.get_for_update(conn, case_id, customer_id)
    if case is None or case.first_responded_at is not None:
        return
    policy = await _policy(conn, case.priority)
    values = sla.response(case, at, clock.now(), policy)
    if values:
        await repository.set_quietly(conn, case, values)


async def mark_sla_breaches(conn: Connection) -> int:
    """Flag every deadline missed (unmet past due, or met late) and not flagged yet, with one
    ``case.sla_breached`` event each, in the caller's transaction; how many were flagged."""
    now = clock.now()
    breaches = [
        (case, kind)
        for kind in ("first_response", "resolution")
        for case in await repository.mark_breaches(conn, kind, now)
    ]
    # The events in customer order: each locks its customer's sequence row, and concurrent runs
    # taking those locks in different orders can deadlock.
    for case, kind in sorted(breaches, key=lambda b: (b[0].customer_id, b[0].id, b[1])):
        due = case.first_response_due_at if kind == "first_response" else case.resolution_due_at
        await events.record(
            conn,
            "case.sla_breached",
            customer_id=case.customer_id,
            data={
                **snapshot(case),
                "sla": kind,
                "due_at": due.isoformat() if due is not None else None,
            },
        )
    return len(breaches)


# ------------------------------------------------------------------------------------ SLA policies


async def list_sla_policies(conn: Connection, caller: Caller) -> list[SlaPolicyOut]:
    caller.require("cases:read")
    return await repository.policies_all(conn)


async def get_sla_policy(conn: Connection, caller: Caller, priority: CasePriority) -> SlaPolicyOut:
    caller.require("cases:read")
    return await _policy(conn, priority)


async def update_sla_policy(
    conn: Connection,
    caller: Caller,
    priority: CasePriority,
    payload: SlaPolicyUpdate,
    expected_version: int | None = None,
) -> SlaPolicyOut:
    """Replace the policy of ``priority``. Cases move to it at their next clock change."""
    caller.require("admin")
    current = await repository.policy_for_update(conn, priority)
    if current is None:  # pragma: no cover - the migration seeds one per priority
        raise NotFound(f"No SLA policy for priority {priority}.", code="sla_policy_not_found")
    check_version(current.version, expected_version, "SLA policy")
    values = payload.model_dump()
    if values == current.model_dump(include=set(values)):
        return current
    return await repository.save_policy(conn, priority, values, clock.now())
