"""Every SQL statement about cases, their transitions and the SLA policies.

Core statements on the mapped tables; a case comes back as a ``CaseOut``, a transition as a
``CaseTransitionOut``, a policy as an ``SlaPolicyOut``, each read from exactly the columns its model
declares.
"""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import (
    case as sql_case,
)

from app.cases.models import Case, CaseTransition, SlaPolicy
from app.cases.schemas import (
    POLICY_FIELDS,
    STORED_FIELDS,
    CaseFilter,
    CaseOut,
    CaseSort,
    CaseTransitionOut,
    SlaPolicyOut,
)
from app.customers.models import Customer
from app.db import Connection

cases: Table = Case.__table__  # type: ignore[assignment]
transitions: Table = CaseTransition.__table__  # type: ignore[assignment]
policies: Table = SlaPolicy.__table__  # type: ignore[assignment]
customers: Table = Customer.__table__  # type: ignore[assignment]

_STORED = [cases.c[name] for name in STORED_FIELDS]
_TRANSITION = [transitions.c[name] for name in CaseTransitionOut.model_fields]
_POLICY = [policies.c[name] for name in POLICY_FIELDS]

_GET = select(*_STORED).where(cases.c.id == bindparam("case_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_GET_MANY = select(*_STORED).where(cases.c.id.in_(bindparam("case_ids", expanding=True)))
_GET_OF_CUSTOMER_FOR_UPDATE = (
    select(*_STORED)
    .where(cases.c.customer_id == bindparam("customer_id"), cases.c.id == bindparam("case_id"))
    .with_for_update()
)
# A live customer, locked against deletion (not against updates) until the transaction ends.
_LIVE_CUSTOMER = (
    select(customers.c.id)
    .where(customers.c.id == bindparam("customer_id"), customers.c.deleted_at.is_(None))
    .with_for_update(key_share=True)
)
# Urgent first.
_PRIORITY_RANK = sql_case(
    {"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=policies.c.priority, else_=4
)
_POLICIES = select(*_POLICY).order_by(_PRIORITY_RANK)
_POLICY_BY_PRIORITY = select(*_POLICY).where(policies.c.priority == bindparam("priority"))
_POLICY_FOR_UPDATE = _POLICY_BY_PRIORITY.with_for_update()


def case_from_row(row: Any) -> CaseOut:
    return CaseOut.from_stored(row._mapping)


def transition_from_row(row: Any) -> CaseTransitionOut:
    return CaseTransitionOut.from_stored(row._mapping)


def _policy(row: Any) -> SlaPolicyOut:
    return SlaPolicyOut.from_stored(row._mapping)


async def customer_is_live(conn: Connection, customer_id: uuid.UUID) -> bool:
    """Whether the customer exists and is not deleted; if so it stays until the transaction ends."""
    return (await conn.execute(_LIVE_CUSTOMER, {"customer_id": customer_id})).first() is not None


async def insert_case(conn: Connection, values: dict[str, Any]) -> CaseOut:
    row = (await conn.execute(insert(cases).values(**values).returning(*_STORED))).one()
    return case_from_row(row)


async def insert_transition(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(transitions).values(**values))


async def get(conn: Connection, case_id: uuid.UUID) -> CaseOut | None:
    row = (await conn.execute(_GET, {"case_id": case_id})).first()
    return None if row is None else case_from_row(row)


async def get_many(conn: Connection, ids: Sequence[uuid.UUID]) -> list[CaseOut]:
    if not ids:
        return []
    return [case_from_row(r) for r in await conn.execute(_GET_MANY, {"case_ids": list(ids)})]


async def get_for_update(
    conn: Connection, case_id: uuid.UUID, customer_id: uuid.UUID | None = None
) -> CaseOut | None:
    """The case, row-locked for this transaction (concurrent changes of it wait their turn)."""
    if customer_id is None:
        row = (await conn.execute(_GET_FOR_UPDATE, {"case_id": case_id})).first()
    else:
        row = (
            await conn.execute(
                _GET_OF_CUSTOMER_FOR_UPDATE, {"case_id": case_id, "customer_id": customer_id}
            )
        ).first()
    return None if row is None else case_from_row(row)


async def save_changes(conn: Connection, case: CaseOut, values: dict[str, Any]) -> CaseOut:
    statement = (
        update(cases)
        .where(cases.c.customer_id == case.customer_id, cases.c.id == case.id)
        .values(**values, version=cases.c.version + 1)
        .returning(*_STORED)
    )
    return case_from_row((await conn.execute(statement)).one())


async def set_quietly(conn: Connection, case: CaseOut, values: dict[str, Any]) -> CaseOut:
    """Bookkeeping a client did not make (the first response): no new version."""
    statement = (
        update(cases)
        .where(cases.c.customer_id == case.customer_id, cases.c.id == case.id)
        .values(**values)
        .returning(*_STORED)
    )
    return case_from_row((await conn.execute(statement)).one())


BREACHED = or_(
    cases.c.first_response_breached_at.is_not(None), cases.c.resolution_breached_at.is_not(None)
)


def list_query(filters: CaseFilter, sort: CaseSort) -> Select[Any]:
    """The filtered, sorted case list, as rows of the stored columns (for ``fetch_page``)."""
    conditions: list[ColumnElement[bool]] = []
    equal_to = {
        cases.c.customer_id: filters.customer_id,
        cases.c.status: filters.status,
        cases.c.priority: filters.priority,
        cases.c.category: filters.category,
        cases.c.assignee: filters.assignee,
        cases.c.channel: filters.channel,
    }
    conditions += [column == value for column, value in equal_to.items() if value is not None]
    if filters.breached is not None:
        conditions.append(BREACHED if filters.breached else ~BREACHED)
    if filters.opened_after is not None:
        conditions.append(cases.c.opened_at >= filters.opened_after)
    if filters.opened_before is not None:
        conditions.append(cases.c.opened_at < filters.opened_before)
    descending = sort.value.startswith("-")
    column = cases.c.opened_at
    order = (column.desc(), cases.c.id.desc()) if descending else (column, cases.c.id)
    return select(*_STORED).where(true(), *conditions).order_by(*order)


def transitions_query(customer_id: uuid.UUID, case_id: uuid.UUID) -> Select[Any]:
    """A case's history, oldest first (for ``fetch_page``)."""
    return (
        select(*_TRANSITION)
        .where(transitions.c.customer_id == customer_id, transitions.c.case_id == case_id)
        .order_by(transitions.c.at, transitions.c.id)
    )


async def transitions_of(
    conn: Connection, keys: Iterable[tuple[uuid.UUID, uuid.UUID]]
) -> list[CaseTransitionOut]:
    """The histories of these (customer_id, case_id) cases, each oldest first, in one query."""
    pairs = list(keys)
    if not pairs:
        return []
    statement = (
        select(*_TRANSITION)
        .where(
            or_(
                *(
                    and_(transitions.c.customer_id == customer, transitions.c.case_id == case_id)
                    for customer, case_id in pairs
                )
            )
        )
        .order_by(transitions.c.case_id, transitions.c.at, transitions.c.id)
    )
    return [transition_from_row(r) for r in await conn.execute(statement)]


# ------------------------------------------------------------------------------------ SLA policies


async def policies_all(conn: Connection) -> list[SlaPolicyOut]:
    return [_policy(r) for r in await conn.execute(_POLICIES)]


async def policy(conn: Connection, priority: str) -> SlaPolicyOut | None:
    row = (await conn.execute(_POLICY_BY_PRIORITY, {"priority": priority})).first()
    return None if row is None else _policy(row)


async def policy_for_update(conn: Connection, priority: str) -> SlaPolicyOut | None:
    row = (await conn.execute(_POLICY_FOR_UPDATE, {"priority": priority})).first()
    return None if row is None else _policy(row)


async def save_policy(
    conn: Connection, priority: str, values: dict[str, Any], now: datetime
) -> SlaPolicyOut:
    statement = (
        update(policies)
        .where(policies.c.priority == priority)
        .values(**values, updated_at=now, version=policies.c.version + 1)
        .returning(*_POLICY)
    )
    return _policy((await conn.execute(statement)).one())


# ---------------------------------------------------------------------------------------- breaches

_BREACH_COLUMNS = (cases.c.customer_id, cases.c.id)


def _breach(kind: str) -> Any:
    breached_at = cases.c[f"{kind}_breached_at"]
    due_at = cases.c[f"{kind}_due_at"]
    met_at = cases.c["first_responded_at" if kind == "first_response" else "resolved_at"]
    # A missed deadline, met late or not yet: the one UPDATE that flags it, exactly once (a
    # concurrent run waits for this row's lock, then finds it flagged and skips it).
    return (
        update(cases)
        .where(
            breached_at.is_(None),
            due_at < func.coalesce(met_at, bindparam("now")),
            # Implied (nothing is met after now); lets the partial index on due_at serve it.
            due_at < bindparam("now"),
        )
        .values({breached_at: bindparam("now")})
        .returning(*_STORED)
    )


BREACH_STATEMENTS = {kind: _breach(kind) for kind in ("first_response", "resolution")}


async def mark_breaches(conn: Connection, kind: str, now: datetime) -> list[CaseOut]:
    """Flag every case whose ``kind`` deadline passed unmet, or was met late, and is not flagged
    yet; the cases flagged now."""
    result = await conn.execute(BREACH_STATEMENTS[kind], {"now": now})
    return [case_from_row(r) for r in result]
