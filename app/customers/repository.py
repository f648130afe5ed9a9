"""Every SQL statement about customers.

Statements run through SQLAlchemy Core against the mapped table and return `CustomerRow`s (rows with
attribute access: `row.email`). The ORM entity adds nothing to these single-table statements and its
identity map costs about a third of a single-row request's CPU (docs/benchmarks.md).
"""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from app.customers.models import Customer
from app.db import Connection

CustomerRow = Row[Any]
customers: Table = Customer.__table__  # type: ignore[assignment]
LIVE = customers.c.deleted_at.is_(None)
INSERTABLE = [c.name for c in customers.c if c.computed is None]

_GET_LIVE = select(customers).where(customers.c.id == bindparam("customer_id"), LIVE)
_GET_LIVE_FOR_UPDATE = _GET_LIVE.with_for_update()
# One statement for every insert (all columns bound), so its compiled form is cached once.
_INSERT_UNLESS_TAKEN = insert(customers).on_conflict_do_nothing().returning(*customers.c)


async def get(conn: Connection, customer_id: uuid.UUID) -> CustomerRow | None:
    return (await conn.execute(_GET_LIVE, {"customer_id": customer_id})).first()


async def get_many(conn: Connection, ids: Sequence[uuid.UUID]) -> Sequence[CustomerRow]:
    if not ids:
        return []
    query = select(customers).where(customers.c.id.in_(list(ids)), LIVE)
    return (await conn.execute(query)).all()


async def get_for_update(conn: Connection, customer_id: uuid.UUID) -> CustomerRow | None:
    return (await conn.execute(_GET_LIVE_FOR_UPDATE, {"customer_id": customer_id})).first()


async def insert_unless_taken(conn: Connection, values: dict[str, Any]) -> CustomerRow | None:
    """Insert a customer; None when its email or external_id already belongs to a live customer.

    ``values`` must name every insertable column (see ``INSERTABLE``)."""
    return (await conn.execute(_INSERT_UNLESS_TAKEN, values)).first()


async def holders_of(
    conn: Connection, *, emails: Iterable[str] = (), external_ids: Iterable[str] = ()
) -> Sequence[CustomerRow]:
    """Live customers holding any of these emails or external ids, locked for the transaction."""
    emails, external_ids = list(emails), list(external_ids)
    conditions: list[ColumnElement[bool]] = []
    if emails:
        conditions.append(customers.c.email.in_(emails))
    if external_ids:
        conditions.append(customers.c.external_id.in_(external_ids))
    if not conditions:
        return []
    query = select(customers).where(LIVE, or_(*conditions)).with_for_update()
    return (await conn.execute(query)).all()


async def save_changes(
    conn: Connection, customer_id: uuid.UUID, values: dict[str, Any]
) -> CustomerRow:
    statement = (
        update(customers)
        .where(customers.c.id == customer_id)
        .values(**values, version=customers.c.version + 1)
        .returning(*customers.c)
    )
    return (await conn.execute(statement)).one()


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
    *,
    sort: str,
    q: str | None = None,
    q_names_only: bool = False,
    email: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    country: str | None = None,
    region: str | None = None,
    city: str | None = None,
    tags: Sequence[str] = (),
    owner: str | None = None,
    source_channel: str | None = None,
    created_range: tuple[datetime | None, datetime | None] = (None, None),
    updated_range: tuple[datetime | None, datetime | None] = (None, None),
) -> Select[Any]:
    """The filtered, sorted customer list; ``sort`` is a SORTABLE key, ``-`` for descending.

    ``q_names_only`` searches the names alone (for keys without pii:read, so a search cannot reveal
    whose email or phone is on file)."""
    conditions: list[ColumnElement[bool]] = [LIVE]
    equal_to = {
        customers.c.email: email,
        customers.c.phone: phone,
        customers.c.external_id: external_id,
        customers.c.country: country,
        customers.c.region: region,
        customers.c.city: city,
        customers.c.owner: owner,
        customers.c.source_channel: source_channel,
    }
    conditions += [column == value for column, value in equal_to.items() if value is not None]
    if tags:
        conditions.append(customers.c.tags.contains(list(tags)))
    for column, (low, high) in (
        (customers.c.created_at, created_range),
        (customers.c.updated_at, updated_range),
    ):
        if low is not None:
            conditions.append(column >= low)
        if high is not None:
            conditions.append(column <= high)
    if q:
        needle = q.lower()
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
    descending = sort.startswith("-")
    column = SORTABLE[sort.lstrip("-")]
    order = (column.desc(), customers.c.id.desc()) if descending else (column, customers.c.id)
    return select(customers).where(and_(*conditions)).order_by(*order)


async def count_live(conn: Connection) -> int:
    return int(
        (await conn.execute(select(func.count()).select_from(customers).where(LIVE))).scalar_one()
    )
