"""The SLA clock of a case, as pure functions: what its columns become when it opens, moves,
changes priority or gets its first response. The service writes what these return.

One clock per case measures business time (``business_time``, in the priority's policy) since the
opening: ``sla_consumed_seconds`` is what was used up to ``sla_clock_started_at``, and while the
clock runs (open, in_progress) a deadline not yet met is ``add(started, target - consumed)``. In
waiting_customer the clock pauses (the used time is banked, the unmet deadlines are null); once
resolved or closed it stops. A met deadline stays stored: the breach job and the reports compare it
with when it was met.
"""

from datetime import datetime
from typing import Any

from app.cases import business_time
from app.cases.enums import CLOCK_RUNS, DONE, CaseStatus
from app.cases.schemas import CaseOut, SlaPolicyOut


def _due(started: datetime, target_minutes: int, consumed: int, policy: SlaPolicyOut) -> datetime:
    left = max(target_minutes * 60 - consumed, 0)
    try:
        return business_time.add(started, left, policy)
    except business_time.BeyondCalendar:  # pragma: no cover - policies are checked to fit
        return datetime.max.replace(tzinfo=started.tzinfo)


def _deadlines(
    started: datetime,
    consumed: int,
    policy: SlaPolicyOut,
    *,
    responded: bool,
    resolved: bool,
) -> dict[str, Any]:
    """The deadlines of the targets not met yet, the clock running since ``started``."""
    values: dict[str, Any] = {}
    if not responded:
        values["first_response_due_at"] = _due(
            started, policy.first_response_minutes, consumed, policy
        )
    if not resolved:
        values["resolution_due_at"] = _due(started, policy.resolution_minutes, consumed, policy)
    return values


def opening(now: datetime, policy: SlaPolicyOut) -> dict[str, Any]:
    """The clock of a case opened at ``now``."""
    return {
        "sla_consumed_seconds": 0,
        "sla_clock_started_at": now,
        **_deadlines(now, 0, policy, responded=False, resolved=False),
    }


def used(case: CaseOut, now: datetime, policy: SlaPolicyOut) -> int:
    """Business seconds the case has used by ``now`` (pauses excluded)."""
    started = case.sla_clock_started_at
    running = 0 if started is None else business_time.between(started, now, policy)
    return case.sla_consumed_seconds + running


def transition(
    case: CaseOut, to: CaseStatus, now: datetime, policy: SlaPolicyOut
) -> dict[str, Any]:
    """The columns a move of ``case`` to ``to`` at ``now`` changes (status and SLA alike)."""
    values: dict[str, Any] = {"status": to}
    consumed = case.sla_consumed_seconds
    started = case.sla_clock_started_at
    responded = case.first_responded_at is not None
    resolved = case.resolved_at is not None
    if started is not None and to not in CLOCK_RUNS:
        consumed = used(case, now, policy)
        started = None
        values.update(sla_consumed_seconds=consumed, sla_clock_started_at=None)
    if to == CaseStatus.WAITING_CUSTOMER:
        if not responded:
            values["first_response_due_at"] = None
        if not resolved:
            values["resolution_due_at"] = None
    elif to == CaseStatus.RESOLVED:
        values.update(resolved_at=now, resolution_seconds=consumed)
        if not responded:
            # Resolving answers the customer: it is the first response if none came before.
            values.update(first_responded_at=now, first_response_seconds=consumed)
    elif to == CaseStatus.CLOSED:
        values["closed_at"] = now
    elif to == CaseStatus.OPEN and case.status in DONE:
        values.update(
            reopen_count=case.reopen_count + 1,
            resolved_at=None,
            closed_at=None,
            resolution_seconds=None,
            resolution=None,
        )
        resolved = False
    if to in CLOCK_RUNS and started is None:
        values["sla_clock_started_at"] = now
        values.update(_deadlines(now, consumed, policy, responded=responded, resolved=resolved))
    return values


def new_priority(
    case: CaseOut, now: datetime, old: SlaPolicyOut, new: SlaPolicyOut
) -> dict[str, Any]:
    """The clock after a priority change at ``now``: the time used so far (in the old policy)
    is kept, and the running deadlines move to the new policy's targets. A paused or stopped
    clock only changes policy: the new one applies when it runs again."""
    if case.sla_clock_started_at is None:
        return {}
    consumed = used(case, now, old)
    return {
        "sla_consumed_seconds": consumed,
        "sla_clock_started_at": now,
        **_deadlines(
            now,
            consumed,
            new,
            responded=case.first_responded_at is not None,
            resolved=case.resolved_at is not None,
        ),
    }


def response(case: CaseOut, at: datetime, now: datetime, policy: SlaPolicyOut) -> dict[str, Any]:
    """The columns a response at ``at`` sets: none once the first response is recorded (a response
    never makes a met target unmet). ``at`` is read within the case's life: not before its
    opening, not after ``now``."""
    if case.first_responded_at is not None:
        return {}
    at = min(max(at, case.opened_at), now)
    started = case.sla_clock_started_at
    running = 0 if started is None else business_time.between(started, at, policy)
    return {
        "first_responded_at": at,
        "first_response_seconds": case.sla_consumed_seconds + running,
    }
