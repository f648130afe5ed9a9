"""Every SQL statement about customers."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer

LIVE = Customer.deleted_at.is_(None)


async def get(session: AsyncSession, customer_id: uuid.UUID) -> Customer | None:
    query = select(Customer).where(Customer.id == customer_id, LIVE)
    return (await session.execute(query)).scalar_one_or_none()


async def get_many(session: AsyncSession, ids: Sequence[uuid.UUID]) -> Sequence[Customer]:
    if not ids:
        return []
    query = select(Customer).where(Customer.id.in_(list(ids)), LIVE)
    return (await session.execute(query)).scalars().all()


async def get_for_update(session: AsyncSession, customer_id: uuid.UUID) -> Customer | None:
    query = (
        select(Customer)
        .where(Customer.id == customer_id, LIVE)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def insert_unless_taken(session: AsyncSession, values: dict[str, Any]) -> Customer | None:
    """Insert a customer; None when its email or external_id already belongs to a live customer."""
    statement = insert(Customer).values(**values).on_conflict_do_nothing().returning(Customer)
    return (await session.execute(statement)).scalar_one_or_none()


async def holders_of(
    session: AsyncSession, *, emails: Iterable[str] = (), external_ids: Iterable[str] = ()
) -> Sequence[Customer]:
    """Live customers holding any of these emails or external ids."""
    emails, external_ids = list(emails), list(external_ids)
    conditions: list[ColumnElement[bool]] = []
    if emails:
        conditions.append(Customer.email.in_(emails))
    if external_ids:
        conditions.append(Customer.external_id.in_(external_ids))
    if not conditions:
        return []
    query = select(Customer).where(LIVE, or_(*conditions)).with_for_update()
    return (await session.execute(query)).scalars().all()


async def save_changes(
    session: AsyncSession, customer_id: uuid.UUID, values: dict[str, Any]
) -> Customer:
    statement = (
        update(Customer)
        .where(Customer.id == customer_id)
        .values(**values, version=Customer.version + 1)
        .returning(Customer)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one()


async def soft_delete(session: AsyncSession, customer_id: uuid.UUID, when: datetime) -> None:
    await session.execute(
        update(Customer)
        .where(Customer.id == customer_id)
        .values(deleted_at=when, updated_at=when, version=Customer.version + 1)
        .execution_options(synchronize_session=False)
    )


SORTABLE = {
    "created_at": Customer.created_at,
    "updated_at": Customer.updated_at,
}


def list_query(
    *,
    sort: str,
    q: str | None = None,
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
) -> Select[Customer]:
    """The filtered, sorted customer list; ``sort`` is a SORTABLE key, ``-`` for descending."""
    conditions: list[ColumnElement[bool]] = [LIVE]
    equal_to = {
        Customer.email: email,
        Customer.phone: phone,
        Customer.external_id: external_id,
        Customer.country: country,
        Customer.region: region,
        Customer.city: city,
        Customer.owner: owner,
        Customer.source_channel: source_channel,
    }
    conditions += [column == value for column, value in equal_to.items() if value is not None]
    if tags:
        conditions.append(Customer.tags.contains(list(tags)))
    for column, (low, high) in (
        (Customer.created_at, created_range),
        (Customer.updated_at, updated_range),
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
        conditions.append(
            or_(
                Customer.search_text.like(f"%{escaped}%", escape="\\"),
                Customer.search_text.op("%>")(needle),
            )
        )
    descending = sort.startswith("-")
    column = SORTABLE[sort.lstrip("-")]
    order = (column.desc(), Customer.id.desc()) if descending else (column, Customer.id)
    return select(Customer).where(and_(*conditions)).order_by(*order)


async def count_live(session: AsyncSession) -> int:
    return int(
        (await session.execute(select(func.count()).select_from(Customer).where(LIVE))).scalar_one()
    )
