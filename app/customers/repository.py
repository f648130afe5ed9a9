"""Every SQL statement about customers.

Core statements on the mapped table; every customer comes back as a ``CustomerOut`` (the stored
customer, nothing redacted), read from exactly the columns that model declares.
"""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from app.core import clock
from app.customers.models import Customer
from app.customers.schemas import STORED_FIELDS, CustomerFilter, CustomerOut, CustomerSort
from app.customers.search import CustomerQuery
from app.db import Connection
from app.db.driver import DriverStatement
from app.events.repository import CUSTOMER_EVENT_PARAMS, customer_event_ctes
from app.rules.compiler import compile_rule, customers_with_metrics

customers: Table = Customer.__table__  # type: ignore[assignment]
LIVE = customers.c.deleted_at.is_(None)
# What a client's fields and the service's bookkeeping fill in; the rest has database defaults.
INSERTABLE = list(STORED_FIELDS)
_STORED = [customers.c[name] for name in STORED_FIELDS]

_GET_LIVE = select(*_STORED).where(customers.c.id == bindparam("customer_id"), LIVE)
_GET_LIVE_FOR_UPDATE = _GET_LIVE.with_for_update()
# Built once: building a statement per call costs more than running it (cache-key generation).
_GET_MANY_LIVE = select(*_STORED).where(
    customers.c.id.in_(bindparam("customer_ids", expanding=True)), LIVE
)
_GET_LIVE_ON_DRIVER = DriverStatement(_GET_LIVE)
_JSON_COLUMNS = [name for name in INSERTABLE if isinstance(customers.c[name].type, JSON)]


def _insert_with_event_sql() -> str:
    columns = ", ".join(INSERTABLE)
    values = ", ".join(f"${i}" for i in range(1, len(INSERTABLE) + 1))
    return f"""
    WITH created AS (
        INSERT INTO customers ({columns}) VALUES ({values})
        ON CONFLICT DO NOTHING
        RETURNING id
    ),
    {customer_event_ctes("created", len(INSERTABLE) + 1)}
    SELECT id FROM created
    """


# A new customer and its event in one statement (one round trip, one transaction of its own).
_INSERT_WITH_EVENT = DriverStatement(
    _insert_with_event_sql(),
    [*INSERTABLE, *CUSTOMER_EVENT_PARAMS],
    json_names=[*_JSON_COLUMNS, "event_data"],
)


def customer_from_row(row: Any) -> CustomerOut:
    return CustomerOut.from_stored(row._mapping)


def _customers(rows: Iterable[Any]) -> list[CustomerOut]:
    return [customer_from_row(row) for row in rows]


async def get(conn: Connection, customer_id: uuid.UUID) -> CustomerOut | None:
    row = await _GET_LIVE_ON_DRIVER.fetchrow(conn, {"customer_id": customer_id})
    return None if row is None else CustomerOut.from_stored(row)


async def insert_with_event(
    conn: Connection, values: dict[str, Any], event: dict[str, Any]
) -> bool:
    """Insert a customer and append its event (``events.service.customer_event``) in one
    statement, as the only write of the unit of work; False, and no event, when its email or
    external_id belongs to a live customer.

    ``values`` must name every insertable column (see ``INSERTABLE``): the stored row is exactly
    ``values``, so nothing is read back."""
    row = await _INSERT_WITH_EVENT.fetchrow(conn, {**values, **event}, only_write=True)
    return row is not None


async def get_many(conn: Connection, ids: Sequence[uuid.UUID]) -> list[CustomerOut]:
    if not ids:
        return []
    return _customers(await conn.execute(_GET_MANY_LIVE, {"customer_ids": list(ids)}))


async def get_for_update(conn: Connection, customer_id: uuid.UUID) -> CustomerOut | None:
    row = (await conn.execute(_GET_LIVE_FOR_UPDATE, {"customer_id": customer_id})).first()
    return None if row is None else customer_from_row(row)


async def holders_of(
    conn: Connection,
    *,
    emails: Iterable[str] = (),
    external_ids: Iterable[str] = (),
    lock: bool = True,
) -> list[CustomerOut]:
    """Live customers holding any of these emails or external ids, locked for the transaction
    unless ``lock`` is False (to explain a conflict, after a write that did not happen)."""
    emails, external_ids = list(emails), list(external_ids)
    conditions: list[ColumnElement[bool]] = []
    if emails:
        conditions.append(customers.c.email.in_(emails))
    if external_ids:
        conditions.append(customers.c.external_id.in_(external_ids))
    if not conditions:
        return []
    query = select(*_STORED).where(LIVE, or_(*conditions))
    return _customers(await conn.execute(query.with_for_update() if lock else query))


async def save_changes(
    conn: Connection, customer_id: uuid.UUID, values: dict[str, Any]
) -> CustomerOut:
    statement = (
        update(customers)
        .where(customers.c.id == customer_id)
        .values(**values, version=customers.c.version + 1)
        .returning(*_STORED)
    )
    return customer_from_row((await conn.execute(statement)).one())


async def soft_delete(conn: Connection, customer_id: uuid.UUID, when: datetime) -> None:
    await conn.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(deleted_at=when, updated_at=when, version=customers.c.version + 1)
    )


SORTABLE = {
    "created_at": customers.c.created_at,
    "updated_at": customers.c.updated_at,
}


def list_query(
    filters: CustomerFilter, sort: CustomerSort, *, q_names_only: bool, now: datetime | None = None
) -> Select[Any]:
    """The filtered, sorted customer list, as rows of the stored columns (for ``fetch_page``).

    ``q_names_only`` searches the names alone (for keys without pii:read, so a search cannot reveal
    whose email or phone is on file); a rule's time windows end at ``now``."""
    conditions: list[ColumnElement[bool]] = [LIVE]
    source: FromClause = customers
    if isinstance(filters, CustomerQuery) and filters.rule is not None:
        compiled = compile_rule(filters.rule, now or clock.now())
        conditions.append(compiled.predicate)
        if compiled.uses_metrics:
            source = customers_with_metrics()
    equal_to = {
        customers.c.email: filters.email,
        customers.c.phone: filters.phone,
        customers.c.external_id: filters.external_id,
        customers.c.country: filters.country,
        customers.c.region: filters.region,
        customers.c.city: filters.city,
        customers.c.owner: filters.owner,
        customers.c.source_channel: filters.source_channel,
    }
    conditions += [column == value for column, value in equal_to.items() if value is not None]
    if filters.tag:
        conditions.append(customers.c.tags.contains(list(filters.tag)))
    for column, low, high in (
        (customers.c.created_at, filters.created_at_gte, filters.created_at_lte),
        (customers.c.updated_at, filters.updated_at_gte, filters.updated_at_lte),
    ):
        if low is not None:
            conditions.append(column >= low)
        if high is not None:
            conditions.append(column <= high)
    if filters.q:
        needle = filters.q.lower()
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # Substring first (exact fragments of names, emails, phones), then trigram word similarity
        # for typos; both are served by the same GIN trigram index.
        searched = customers.c.name_search_text if q_names_only else customers.c.search_text
        conditions.append(
            or_(
                searched.like(f"%{escaped}%", escape="\\"),
                searched.op("%>")(needle),
            )
        )
    descending = sort.value.startswith("-")
    column = SORTABLE[sort.value.lstrip("-")]
    order = (column.desc(), customers.c.id.desc()) if descending else (column, customers.c.id)
    return select(*_STORED).select_from(source).where(and_(*conditions)).order_by(*order)


async def count_live(conn: Connection) -> int:
    return int(
        (await conn.execute(select(func.count()).select_from(customers).where(LIVE))).scalar_one()
    )
