"""Every SQL statement about orders, their lines and refunds.

Core statements on the mapped tables. An order is read with its lines (one JSON column aggregated
per order) and comes back as an ``OrderOut``; a refund as a ``RefundOut``. Each write is one
statement with its lines, the customer's metrics (``app/analytics/incremental.py``) and the event,
so the single create is one round trip.

Locks are always taken in the same order: (source, external_id) index entries (a batch inserts its
orders sorted by them), then ``customer_metrics`` rows, then event sequence rows (both in customer
order), so no two writers wait on each other in a cycle.
"""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic_core import to_json
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    bindparam,
    exists,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

from app.analytics.incremental import orders_upsert, refunds_upsert
from app.core.schemas import Money
from app.customers.models import Customer
from app.db import Connection
from app.db.driver import DriverStatement
from app.events.repository import CUSTOMER_EVENT_PARAMS, customer_event_ctes
from app.orders.models import Order, OrderItem, OrderRefund
from app.orders.schemas import (
    OrderFilter,
    OrderOut,
    OrderSort,
    RefundLine,
    RefundOut,
    refund_state,
)

orders: Table = Order.__table__  # type: ignore[assignment]
order_items: Table = OrderItem.__table__  # type: ignore[assignment]
order_refunds: Table = OrderRefund.__table__  # type: ignore[assignment]
_customers: Table = Customer.__table__  # type: ignore[assignment]

# Every column of an order with its SQL type, in the order the create's parameters name them.
ORDER_COLUMNS: dict[str, str] = {
    "customer_id": "uuid",
    "id": "uuid",
    "status": "varchar",
    "channel": "varchar",
    "currency": "varchar",
    "subtotal": "numeric",
    "discount": "numeric",
    "shipping": "numeric",
    "tax": "numeric",
    "total": "numeric",
    "refunded_amount": "numeric",
    "occurred_at": "timestamptz",
    "source": "varchar",
    "external_id": "varchar",
    "attributes": "jsonb",
    "version": "int",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
# The lines of an order as parallel arrays, one element per line (``line`` is the position).
ITEM_COLUMNS: dict[str, str] = {
    "sku": "varchar",
    "name": "varchar",
    "category": "varchar",
    "quantity": "int",
    "unit_price": "numeric",
}

# The foreign key whose violation means the customer is not there (any more).
CUSTOMER_FK = "fk_orders_customer_id_customers"

_MONEY_COLUMNS = ("subtotal", "discount", "shipping", "tax", "total")
_STORED = [orders.c[name] for name in ORDER_COLUMNS]


def _as_text(column: Any) -> Any:
    # Amounts leave the database as text: inside JSON a number would come back as a float.
    return column.cast(Text)


# An order's lines as one JSON array, in line order.
_ITEMS_JSON = (
    select(
        func.coalesce(
            func.jsonb_agg(
                aggregate_order_by(
                    func.jsonb_build_object(
                        literal_column("'line'"),
                        order_items.c.line,
                        literal_column("'sku'"),
                        order_items.c.sku,
                        literal_column("'name'"),
                        order_items.c.name,
                        literal_column("'category'"),
                        order_items.c.category,
                        literal_column("'quantity'"),
                        order_items.c.quantity,
                        literal_column("'unit_price'"),
                        _as_text(order_items.c.unit_price),
                        literal_column("'refunded_quantity'"),
                        order_items.c.refunded_quantity,
                    ),
                    order_items.c.line,
                )
            ),
            literal_column("'[]'::jsonb"),
            type_=JSONB,
        )
    )
    .where(
        order_items.c.customer_id == orders.c.customer_id,
        order_items.c.order_id == orders.c.id,
    )
    .scalar_subquery()
    .label("items")
)
_SELECT_ORDER = select(*_STORED, _ITEMS_JSON)


def order_from_row(row: Any) -> OrderOut:
    """A stored order (a row of ``_SELECT_ORDER``, a Row or an asyncpg Record) as ``OrderOut``."""
    values: Mapping[str, Any] = row._mapping if hasattr(row, "_mapping") else row
    currency = values["currency"]
    data: dict[str, Any] = {
        name: values[name]
        for name in (
            "id",
            "customer_id",
            "source",
            "external_id",
            "status",
            "channel",
            "occurred_at",
            "attributes",
            "version",
            "created_at",
            "updated_at",
        )
    }
    for name in _MONEY_COLUMNS:
        data[name] = Money.of(values[name], currency)
    data["refunded"] = Money.of(values["refunded_amount"], currency)
    data["refund_state"] = refund_state(values["total"], values["refunded_amount"])
    # Lines as dicts: from_stored makes them OrderItemOut.
    data["items"] = [
        {**item, "unit_price": Money.of(Decimal(item["unit_price"]), currency)}
        for item in values["items"]
    ]
    return OrderOut.from_stored(data)


_GET = _SELECT_ORDER.where(orders.c.id == bindparam("order_id"))
_GET_ON_DRIVER = DriverStatement(_GET)
# Locked against concurrent refunds; NO KEY UPDATE leaves the foreign keys of interactions and
# lines that point at the order free to be checked meanwhile.
_GET_FOR_UPDATE = _GET.with_for_update(key_share=True, of=orders)
_GET_MANY = _SELECT_ORDER.where(orders.c.id.in_(bindparam("order_ids", expanding=True)))
_GET_BY_EXTERNAL_ID = _SELECT_ORDER.where(
    orders.c.source == bindparam("source"), orders.c.external_id == bindparam("external_id")
)
_CUSTOMER_IS_LIVE = select(
    exists().where(_customers.c.id == bindparam("customer_id"), _customers.c.deleted_at.is_(None))
)


# ------------------------------------------------------------------------------------- the create


def _params(start: int, names: Mapping[str, str]) -> list[str]:
    return [f"${i}::{kind}" for i, kind in enumerate(names.values(), start=start)]


def _insert_with_event_sql() -> str:
    columns = ", ".join(ORDER_COLUMNS)
    values = ", ".join(_params(1, ORDER_COLUMNS))
    first_item = len(ORDER_COLUMNS) + 1
    arrays = ", ".join(f"{p}[]" for p in _params(first_item, ITEM_COLUMNS))
    customer = "$1::uuid"
    now = f"${list(ORDER_COLUMNS).index('created_at') + 1}::timestamptz"
    first_event = first_item + len(ITEM_COLUMNS)
    return f"""
    WITH owner AS (
        SELECT c.id FROM customers AS c WHERE c.id = {customer} AND c.deleted_at IS NULL
    ),
    created AS (
        INSERT INTO orders ({columns})
        SELECT {values} FROM owner
        ON CONFLICT (source, external_id) WHERE external_id IS NOT NULL DO NOTHING
        RETURNING customer_id, id, status, total, occurred_at
    ),
    created_items AS (
        INSERT INTO order_items (customer_id, order_id, line, {", ".join(ITEM_COLUMNS)})
        SELECT o.customer_id, o.id, i.line, {", ".join(f"i.{c}" for c in ITEM_COLUMNS)}
        FROM created AS o,
             unnest({arrays}) WITH ORDINALITY AS i({", ".join(ITEM_COLUMNS)}, line)
    ),
    metrics AS ({orders_upsert("created", now)}),
    -- The event after the metrics (the scalar subquery runs them first): every writer takes the
    -- metrics row before the event sequence row.
    recorded AS (
        SELECT customer_id AS id FROM created WHERE (SELECT count(*) FROM metrics) >= 0
    ),
    {customer_event_ctes("recorded", first_event)}
    SELECT id FROM created
    """


# A new order, its lines, its customer's metrics and its event in one statement: written only for
# a live customer, and not when its (source, external_id) is stored already.
_INSERT_WITH_EVENT = DriverStatement(
    _insert_with_event_sql(),
    [*ORDER_COLUMNS, *ITEM_COLUMNS, *CUSTOMER_EVENT_PARAMS],
    json_names=["attributes", "event_data"],
)


def item_arrays(items: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Lines (dicts naming ``ITEM_COLUMNS``) as the parallel arrays the statements take."""
    return {name: [item[name] for item in items] for name in ITEM_COLUMNS}


async def insert_with_event(
    conn: Connection,
    values: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    event: Mapping[str, Any],
    *,
    only_write: bool,
) -> bool:
    """Insert an order with its lines, add it to its customer's metrics (unless cancelled) and
    append its event, in one statement; False, and nothing written, when the customer is not live
    or the (source, external_id) pair is stored already. ``values`` names every column of
    ``ORDER_COLUMNS``. ``only_write``: see ``DriverStatement.fetchrow``."""
    params = {**values, **item_arrays(items), **event}
    row = await _INSERT_WITH_EVENT.fetchrow(conn, params, only_write=only_write)
    return row is not None


# -------------------------------------------------------------------------------------- the batch

_LIVE_CUSTOMERS = DriverStatement(
    "SELECT id FROM customers WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL",
    ["customer_ids"],
)
_STORED_PAIRS = DriverStatement(
    """
    SELECT o.source, o.external_id, o.customer_id, o.id
    FROM unnest($1::varchar[], $2::varchar[]) AS p(source, external_id)
    JOIN orders AS o ON o.source = p.source AND o.external_id = p.external_id
    """,
    ["sources", "external_ids"],
)


def _insert_batch_sql() -> str:
    currency, now = "$2::varchar", "$3::timestamptz"
    amounts = ", ".join(f"(e->'{name}'->>'amount')::numeric AS {name}" for name in _MONEY_COLUMNS)
    return f"""
    WITH given AS (
        SELECT n, (e->>'index')::int AS index, (e->>'event_id')::uuid AS event_id,
               (e->>'customer_id')::uuid AS customer_id, (e->>'id')::uuid AS id,
               e->>'status' AS status, e->>'channel' AS channel, {amounts},
               (e->>'occurred_at')::timestamptz AS occurred_at, e->>'source' AS source,
               e->>'external_id' AS external_id, e->'attributes' AS attributes,
               e->'items' AS items, e - 'index' - 'event_id' AS data
        FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(e, n)
    ),
    created AS (
        INSERT INTO orders ({", ".join(ORDER_COLUMNS)})
        SELECT customer_id, id, status, channel, {currency}, subtotal, discount, shipping, tax,
               total, 0, occurred_at, source, external_id, attributes, 1, {now}, {now}
        FROM given ORDER BY n
        ON CONFLICT (source, external_id) WHERE external_id IS NOT NULL DO NOTHING
        RETURNING customer_id, id, status, total, occurred_at
    ),
    created_items AS (
        INSERT INTO order_items (customer_id, order_id, line, {", ".join(ITEM_COLUMNS)})
        SELECT g.customer_id, g.id, l.line, l.sku, l.name, l.category, l.quantity,
               (l.unit_price->>'amount')::numeric
        FROM given AS g
        JOIN created AS o ON o.id = g.id
        CROSS JOIN LATERAL jsonb_to_recordset(g.items) AS l(
            line smallint, sku varchar, name varchar, category varchar, quantity int,
            unit_price jsonb
        )
    ),
    metrics AS ({orders_upsert("created", now)}),
    -- The sequences after the metrics (the scalar subquery runs them first): every writer takes
    -- the metrics rows before the event sequence rows.
    taken AS (
        INSERT INTO customer_event_sequences AS s (customer_id, last_sequence)
        SELECT customer_id, count(*) FROM created WHERE (SELECT count(*) FROM metrics) >= 0
        GROUP BY customer_id ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE
        SET last_sequence = s.last_sequence + excluded.last_sequence
        RETURNING customer_id, last_sequence
    ),
    appended AS (
        INSERT INTO events (id, type, customer_id, sequence, occurred_at, data)
        SELECT g.event_id, 'order.created', g.customer_id,
               t.last_sequence - count(*) OVER w + row_number() OVER (w ORDER BY g.index),
               {now}, g.data
        FROM given AS g
        JOIN created AS o ON o.id = g.id
        JOIN taken AS t ON t.customer_id = g.customer_id
        WINDOW w AS (PARTITION BY g.customer_id)
    )
    SELECT id FROM created
    """


# Many orders with their lines, their customers' metrics and their order.created events, in one
# statement; returns the ids of the orders written (not those whose (source, external_id) is
# stored already). The orders come as one JSON array of their event data (``service.
# order_document``): PostgreSQL parses it faster than asyncpg encodes two dozen arrays (~25 ms
# for 1,000 orders), and each event's data is its element, not a second copy.
_INSERT_BATCH = DriverStatement(_insert_batch_sql(), ["orders", "currency", "now"])


async def live_customers(conn: Connection, customer_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    rows = await _LIVE_CUSTOMERS.fetch(conn, {"customer_ids": list(customer_ids)})
    return {row["id"] for row in rows}


async def stored_pairs(
    conn: Connection, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[uuid.UUID, uuid.UUID]]:
    """(customer id, order id) of each stored order among these (source, external_id) pairs."""
    if not pairs:
        return {}
    rows = await _STORED_PAIRS.fetch(
        conn, {"sources": [p[0] for p in pairs], "external_ids": [p[1] for p in pairs]}
    )
    return {(r["source"], r["external_id"]): (r["customer_id"], r["id"]) for r in rows}


async def insert_batch(
    conn: Connection, documents: Sequence[Mapping[str, Any]], currency: str, now: datetime
) -> set[uuid.UUID]:
    """Insert orders, in the order given, with their lines, add them to their customers' metrics
    and append their ``order.created`` events; the ids of the orders written. Each order is its
    event data (``service.order_document``, with ``now`` as its creation time) plus ``index``
    (a customer's events are numbered in this order) and ``event_id``."""
    rows = await _INSERT_BATCH.fetch(
        conn, {"orders": to_json(documents).decode(), "currency": currency, "now": now}
    )
    return {row["id"] for row in rows}


# ------------------------------------------------------------------------------------------ reads


async def get(conn: Connection, order_id: uuid.UUID) -> OrderOut | None:
    row = await _GET_ON_DRIVER.fetchrow(conn, {"order_id": order_id})
    return None if row is None else order_from_row(row)


async def get_for_update(conn: Connection, order_id: uuid.UUID) -> OrderOut | None:
    row = (await conn.execute(_GET_FOR_UPDATE, {"order_id": order_id})).first()
    return None if row is None else order_from_row(row)


async def get_many(conn: Connection, ids: Sequence[uuid.UUID]) -> list[OrderOut]:
    if not ids:
        return []
    rows = await conn.execute(_GET_MANY, {"order_ids": list(ids)})
    return [order_from_row(row) for row in rows]


async def get_by_external_id(conn: Connection, source: str, external_id: str) -> OrderOut | None:
    result = await conn.execute(_GET_BY_EXTERNAL_ID, {"source": source, "external_id": external_id})
    row = result.first()
    return None if row is None else order_from_row(row)


async def customer_is_live(conn: Connection, customer_id: uuid.UUID) -> bool:
    return bool((await conn.execute(_CUSTOMER_IS_LIVE, {"customer_id": customer_id})).scalar())


SORTABLE = {"occurred_at": orders.c.occurred_at, "created_at": orders.c.created_at}


def list_query(filters: OrderFilter, sort: OrderSort) -> Select[Any]:
    """The filtered, sorted list, as rows of ``_SELECT_ORDER`` (for ``fetch_page``)."""
    equal_to = {
        orders.c.customer_id: filters.customer_id,
        orders.c.status: filters.status,
        orders.c.channel: filters.channel,
        orders.c.source: filters.source,
        orders.c.external_id: filters.external_id,
    }
    conditions: list[ColumnElement[bool]] = [
        column == value for column, value in equal_to.items() if value is not None
    ]
    if filters.sku is not None:
        conditions.append(
            exists().where(
                order_items.c.customer_id == orders.c.customer_id,
                order_items.c.order_id == orders.c.id,
                order_items.c.sku == filters.sku,
            )
        )
    if filters.occurred_after is not None:
        conditions.append(orders.c.occurred_at >= filters.occurred_after)
    if filters.occurred_before is not None:
        conditions.append(orders.c.occurred_at < filters.occurred_before)
    descending = sort.value.startswith("-")
    column = SORTABLE[sort.value.lstrip("-")]
    order = (column.desc(), orders.c.id.desc()) if descending else (column, orders.c.id)
    return _SELECT_ORDER.where(*conditions).order_by(*order)


# ---------------------------------------------------------------------------------------- refunds

REFUND_COLUMNS: dict[str, str] = {
    "customer_id": "uuid",
    "id": "uuid",
    "order_id": "uuid",
    "amount": "numeric",
    "items": "jsonb",
    "reason": "varchar",
    "external_id": "varchar",
    "occurred_at": "timestamptz",
    "created_at": "timestamptz",
}
_REFUND_STORED = [order_refunds.c[name] for name in REFUND_COLUMNS]
_SELECT_REFUND = select(*_REFUND_STORED, orders.c.currency).join_from(
    order_refunds,
    orders,
    (orders.c.customer_id == order_refunds.c.customer_id)
    & (orders.c.id == order_refunds.c.order_id),
)
_REFUND_BY_EXTERNAL_ID = _SELECT_REFUND.where(
    order_refunds.c.order_id == bindparam("order_id"),
    order_refunds.c.external_id == bindparam("external_id"),
)
_GET_REFUND = _SELECT_REFUND.where(
    order_refunds.c.order_id == bindparam("order_id"), order_refunds.c.id == bindparam("refund_id")
)


def refund_from_row(row: Any) -> RefundOut:
    values: Mapping[str, Any] = row._mapping if hasattr(row, "_mapping") else row
    data = {name: values[name] for name in REFUND_COLUMNS}
    data["amount"] = Money.of(values["amount"], values["currency"])
    if data["items"] is not None:
        data["items"] = [RefundLine.model_construct(**line) for line in data["items"]]
    return RefundOut.from_stored(data)


def _refund_sql() -> str:
    columns = ", ".join(REFUND_COLUMNS)
    values = ", ".join(_params(1, REFUND_COLUMNS))
    line_start = len(REFUND_COLUMNS) + 1
    lines, quantities = f"${line_start}::int[]", f"${line_start + 1}::int[]"
    customer, order, amount = "$1::uuid", "$3::uuid", "$4::numeric"
    now = f"${list(REFUND_COLUMNS).index('created_at') + 1}::timestamptz"
    return f"""
    WITH refund AS (
        INSERT INTO order_refunds ({columns}) VALUES ({values})
        RETURNING customer_id, amount
    ),
    refunded_order AS (
        UPDATE orders SET refunded_amount = refunded_amount + {amount},
                          version = version + 1, updated_at = {now}
        WHERE customer_id = {customer} AND id = {order}
    ),
    refunded_lines AS (
        UPDATE order_items AS i SET refunded_quantity = i.refunded_quantity + l.quantity
        FROM unnest({lines}, {quantities}) AS l(line, quantity)
        WHERE i.customer_id = {customer} AND i.order_id = {order} AND i.line = l.line
    ),
    metrics AS ({refunds_upsert("refund", now)}),
    recorded AS (
        SELECT customer_id AS id FROM refund WHERE (SELECT count(*) FROM metrics) >= 0
    ),
    {customer_event_ctes("recorded", line_start + 2)}
    SELECT 1
    """


# A refund with everything it changes, in one statement: the refund, the order's refunded amount
# and version, its lines' refunded quantities, the customer's metrics and the event.
_INSERT_REFUND = DriverStatement(
    _refund_sql(),
    [*REFUND_COLUMNS, "lines", "quantities", *CUSTOMER_EVENT_PARAMS],
    json_names=["items", "event_data"],
)


async def insert_refund(
    conn: Connection, values: Mapping[str, Any], event: Mapping[str, Any]
) -> None:
    """Record a refund (``values`` names every column of ``REFUND_COLUMNS``; ``items`` a list of
    ``{"line", "quantity"}`` or None) and everything it changes, in the caller's transaction,
    with the order locked (``get_for_update``)."""
    lines = values["items"] or []
    await _INSERT_REFUND.fetchrow(
        conn,
        {
            **values,
            "lines": [line["line"] for line in lines],
            "quantities": [line["quantity"] for line in lines],
            **event,
        },
    )


async def refund_by_external_id(
    conn: Connection, order_id: uuid.UUID, external_id: str
) -> RefundOut | None:
    result = await conn.execute(
        _REFUND_BY_EXTERNAL_ID, {"order_id": order_id, "external_id": external_id}
    )
    row = result.first()
    return None if row is None else refund_from_row(row)


async def get_refund(
    conn: Connection, order_id: uuid.UUID, refund_id: uuid.UUID
) -> RefundOut | None:
    row = (await conn.execute(_GET_REFUND, {"order_id": order_id, "refund_id": refund_id})).first()
    return None if row is None else refund_from_row(row)


def refunds_query(customer_id: uuid.UUID, order_id: uuid.UUID) -> Select[Any]:
    """An order's refunds, oldest first (for ``fetch_page``)."""
    return _SELECT_REFUND.where(
        order_refunds.c.customer_id == customer_id, order_refunds.c.order_id == order_id
    ).order_by(order_refunds.c.occurred_at, order_refunds.c.id)
