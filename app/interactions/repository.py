"""Every SQL statement about interactions.

Core statements on the mapped table; every interaction comes back as an ``InteractionOut``, read
from exactly the columns that model declares.
"""

import uuid
import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql

from app.cases.models import Case
from app.customers.models import Customer
from app.db import Connection
from app.db.driver import DriverStatement
from app.events.repository import CUSTOMER_EVENT_PARAMS, customer_event_ctes
from app.interactions.models import Interaction
from app.interactions.schemas import (
    STORED_FIELDS,
    FollowUpFilter,
    InteractionFilter,
    InteractionOut,
    InteractionSort,
)
from app.orders.models import Order

# The follow-up list orders by due_at, a nullable column, but only over rows where it is set: the
# pager's warning about nullable sort columns does not apply to it.
warnings.filterwarnings(
    "ignore", message="Ordering by nullable column interactions.due_at", category=UserWarning
)

interactions: Table = Interaction.__table__  # type: ignore[assignment]
_customers: Table = Customer.__table__  # type: ignore[assignment]
_cases: Table = Case.__table__  # type: ignore[assignment]
_orders: Table = Order.__table__  # type: ignore[assignment]

# What a client's fields and the service's bookkeeping fill in (every column of the table).
INSERTABLE = [*STORED_FIELDS, "due_announced_at"]
_STORED = [interactions.c[name] for name in STORED_FIELDS]
_JSON_COLUMNS = [name for name in INSERTABLE if isinstance(interactions.c[name].type, JSON)]

# The foreign keys whose violation means the customer, the case or the order is not there (any
# more).
CUSTOMER_FK = "fk_interactions_customer_id_customers"
CASE_FK = "fk_interactions_customer_id_case_id_cases"
ORDER_FK = "fk_interactions_customer_id_order_id_orders"

_GET = select(*_STORED).where(interactions.c.id == bindparam("interaction_id"))
_GET_ON_DRIVER = DriverStatement(_GET)
_GET_FOR_UPDATE = _GET.with_for_update()
_GET_MANY = select(*_STORED).where(
    interactions.c.id.in_(bindparam("interaction_ids", expanding=True))
)
_GET_BY_EXTERNAL_ID = select(*_STORED).where(
    interactions.c.source == bindparam("source"),
    interactions.c.external_id == bindparam("external_id"),
)
_CUSTOMER_IS_LIVE = select(
    exists().where(_customers.c.id == bindparam("customer_id"), _customers.c.deleted_at.is_(None))
)
_CASE_OF_CUSTOMER = select(_cases.c.id).where(
    _cases.c.customer_id == bindparam("customer_id"), _cases.c.id == bindparam("case_id")
)
# The same, locked against deletion until the transaction ends (the foreign key then holds).
_LOCK_CASE_OF_CUSTOMER = _CASE_OF_CUSTOMER.with_for_update(key_share=True)
_ORDER_OF_CUSTOMER = select(_orders.c.id).where(
    _orders.c.customer_id == bindparam("customer_id"), _orders.c.id == bindparam("order_id")
)
_LOCK_ORDER_OF_CUSTOMER = _ORDER_OF_CUSTOMER.with_for_update(key_share=True, read=True)


def _cast(name: str) -> str:
    return str(interactions.c[name].type.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]


def _insert_with_event_sql() -> str:
    columns = ", ".join(INSERTABLE)
    values = ", ".join(f"${i}::{_cast(name)}" for i, name in enumerate(INSERTABLE, start=1))
    customer = f"${INSERTABLE.index('customer_id') + 1}::uuid"
    case = f"${INSERTABLE.index('case_id') + 1}::uuid"
    order = f"${INSERTABLE.index('order_id') + 1}::uuid"
    return f"""
    WITH owner AS (
        SELECT c.id FROM customers AS c
        WHERE c.id = {customer} AND c.deleted_at IS NULL
          AND ({case} IS NULL
               OR EXISTS (SELECT 1 FROM cases AS k WHERE k.customer_id = c.id AND k.id = {case}))
          AND ({order} IS NULL
               OR EXISTS (SELECT 1 FROM orders AS o WHERE o.customer_id = c.id AND o.id = {order}))
    ),
    created AS (
        INSERT INTO interactions ({columns})
        SELECT {values} FROM owner
        ON CONFLICT (source, external_id) WHERE external_id IS NOT NULL DO NOTHING
        RETURNING customer_id AS id
    ),
    {customer_event_ctes("created", len(INSERTABLE) + 1)}
    SELECT id FROM created
    """


# A new interaction and its event in one statement: written only for a live customer (and a case
# and an order of that customer), and not when its (source, external_id) is stored already.
_INSERT_WITH_EVENT = DriverStatement(
    _insert_with_event_sql(),
    [*INSERTABLE, *CUSTOMER_EVENT_PARAMS],
    json_names=[*_JSON_COLUMNS, "event_data"],
)


def interaction_from_row(row: Any) -> InteractionOut:
    return InteractionOut.from_stored(row._mapping)


async def insert_with_event(
    conn: Connection, values: dict[str, Any], event: dict[str, Any], *, only_write: bool
) -> bool:
    """Insert an interaction and append its event (``events.service.customer_event``) in one
    statement; False, and no event, when the customer is not live, the case is not one of the
    customer's, or the (source, external_id) pair is stored already. ``values`` names every
    column of ``INSERTABLE``. ``only_write``: see ``DriverStatement.fetchrow``."""
    row = await _INSERT_WITH_EVENT.fetchrow(conn, {**values, **event}, only_write=only_write)
    return row is not None


async def get(conn: Connection, interaction_id: uuid.UUID) -> InteractionOut | None:
    row = await _GET_ON_DRIVER.fetchrow(conn, {"interaction_id": interaction_id})
    return None if row is None else InteractionOut.from_stored(row)


async def get_for_update(conn: Connection, interaction_id: uuid.UUID) -> InteractionOut | None:
    row = (await conn.execute(_GET_FOR_UPDATE, {"interaction_id": interaction_id})).first()
    return None if row is None else interaction_from_row(row)


async def get_many(conn: Connection, ids: Sequence[uuid.UUID]) -> list[InteractionOut]:
    if not ids:
        return []
    rows = await conn.execute(_GET_MANY, {"interaction_ids": list(ids)})
    return [interaction_from_row(row) for row in rows]


async def get_by_external_id(
    conn: Connection, source: str, external_id: str
) -> InteractionOut | None:
    result = await conn.execute(_GET_BY_EXTERNAL_ID, {"source": source, "external_id": external_id})
    row = result.first()
    return None if row is None else interaction_from_row(row)


async def customer_is_live(conn: Connection, customer_id: uuid.UUID) -> bool:
    return bool((await conn.execute(_CUSTOMER_IS_LIVE, {"customer_id": customer_id})).scalar())


async def is_case_of(
    conn: Connection, customer_id: uuid.UUID, case_id: uuid.UUID, *, lock: bool
) -> bool:
    """Whether the case is one of the customer's; with ``lock``, it then cannot be deleted until
    the transaction ends (a write's foreign key holds)."""
    statement = _LOCK_CASE_OF_CUSTOMER if lock else _CASE_OF_CUSTOMER
    result = await conn.execute(statement, {"customer_id": customer_id, "case_id": case_id})
    return result.first() is not None


async def is_order_of(
    conn: Connection, customer_id: uuid.UUID, order_id: uuid.UUID, *, lock: bool
) -> bool:
    """Whether the order is one of the customer's; with ``lock``, it then cannot be deleted until
    the transaction ends (a write's foreign key holds)."""
    statement = _LOCK_ORDER_OF_CUSTOMER if lock else _ORDER_OF_CUSTOMER
    result = await conn.execute(statement, {"customer_id": customer_id, "order_id": order_id})
    return result.first() is not None


async def save_changes(
    conn: Connection, customer_id: uuid.UUID, interaction_id: uuid.UUID, values: dict[str, Any]
) -> InteractionOut:
    statement = (
        update(interactions)
        .where(interactions.c.customer_id == customer_id, interactions.c.id == interaction_id)
        .values(**values, version=interactions.c.version + 1)
        .returning(*_STORED)
    )
    return interaction_from_row((await conn.execute(statement)).one())


SORTABLE = {
    "occurred_at": interactions.c.occurred_at,
    "created_at": interactions.c.created_at,
}


def list_query(filters: InteractionFilter, sort: InteractionSort) -> Select[Any]:
    """The filtered, sorted list, as rows of the stored columns (for ``fetch_page``)."""
    equal_to = {
        interactions.c.customer_id: filters.customer_id,
        interactions.c.case_id: filters.case_id,
        interactions.c.channel: filters.channel,
        interactions.c.direction: filters.direction,
        interactions.c.kind: filters.kind,
        interactions.c.status: filters.status,
        interactions.c.agent: filters.agent,
        interactions.c.source: filters.source,
        interactions.c.external_id: filters.external_id,
    }
    conditions: list[ColumnElement[bool]] = [
        column == value for column, value in equal_to.items() if value is not None
    ]
    if filters.occurred_after is not None:
        conditions.append(interactions.c.occurred_at >= filters.occurred_after)
    if filters.occurred_before is not None:
        conditions.append(interactions.c.occurred_at < filters.occurred_before)
    descending = sort.value.startswith("-")
    column = SORTABLE[sort.value.lstrip("-")]
    order = (column.desc(), interactions.c.id.desc()) if descending else (column, interactions.c.id)
    return select(*_STORED).where(*conditions).order_by(*order)


def follow_ups_query(filters: FollowUpFilter) -> Select[Any]:
    """Follow-ups (interactions with a due_at) by due date, then id."""
    conditions: list[ColumnElement[bool]] = [
        interactions.c.due_at.is_not(None),
        interactions.c.status == filters.status.value,
    ]
    if filters.due_before is not None:
        conditions.append(interactions.c.due_at < filters.due_before)
    if filters.agent is not None:
        conditions.append(interactions.c.agent == filters.agent)
    if filters.customer_id is not None:
        conditions.append(interactions.c.customer_id == filters.customer_id)
    return (
        select(*_STORED).where(and_(*conditions)).order_by(interactions.c.due_at, interactions.c.id)
    )


# Claim due follow-ups not announced yet: one conditional UPDATE, so each is claimed by exactly one
# run (a row another run holds is skipped; one it has claimed no longer matches).
_CLAIM_DUE = text(
    f"""
    UPDATE interactions AS i SET due_announced_at = :now
    FROM (
        SELECT customer_id, id FROM interactions
        WHERE status = 'planned' AND due_announced_at IS NULL AND due_at <= :now
        ORDER BY due_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE i.customer_id = due.customer_id AND i.id = due.id
      AND i.status = 'planned' AND i.due_announced_at IS NULL AND i.due_at <= :now
    RETURNING {", ".join(f"i.{name}" for name in STORED_FIELDS)}
    """
).columns(*_STORED)


async def claim_due_follow_ups(conn: Connection, now: datetime, limit: int) -> list[InteractionOut]:
    """Mark up to ``limit`` due, unannounced follow-ups as announced at ``now``; those marked."""
    rows = await conn.execute(_CLAIM_DUE, {"now": now, "limit": limit})
    return [interaction_from_row(row) for row in rows]
