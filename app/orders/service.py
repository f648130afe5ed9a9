"""Order use cases, shared by REST, GraphQL and the batch. Signature: (conn, caller, payload).

An order is written with its lines, its customer's metrics (``app/analytics/incremental.py``) and its
``order.created`` event in one statement; a refund with everything it changes (the order, its lines,
the metrics, ``order.refunded``) in one statement too, after the order is locked. Orders carry no
field marked PII.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError

from app.core import clock
from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.core.schemas import Money
from app.db import Connection
from app.events import service as events
from app.orders import repository
from app.orders.enums import OrderStatus
from app.orders.schemas import (
    MONEY_LIMIT,
    ZERO,
    OrderCreate,
    OrderFilter,
    OrderOut,
    OrderSort,
    RefundCreate,
    RefundOut,
    refund_state,
)

CENT = Decimal("0.01")
# SQLSTATE numeric_value_out_of_range: a sum past what the metrics' columns hold.
_OUT_OF_RANGE = "22003"


def snapshot(order: OrderOut) -> dict[str, Any]:
    """The order as events carry it: every stored field with its lines, JSON-ready."""
    return order.model_dump(mode="json")


def customer_not_found(customer_id: uuid.UUID) -> ValidationFailed:
    return ValidationFailed(
        f"No customer {customer_id}.",
        code="customer_not_found",
        errors=[{"field": "body.customer_id", "message": "no such customer"}],
    )


def _order_not_found(order_id: uuid.UUID) -> NotFound:
    return NotFound(f"No order {order_id}.", code="order_not_found")


def _out_of_range() -> ValidationFailed:
    return ValidationFailed(
        "The customer's revenue would exceed what Kehu can hold.", code="amount_out_of_range"
    )


def _money_json(value: Decimal) -> dict[str, str]:
    return {"amount": f"{value:.2f}", "currency": get_settings().currency}


def check_currency(money: Sequence[tuple[str, Money]]) -> None:
    currency = get_settings().currency
    for where, value in money:
        if value.currency != currency:
            raise ValidationFailed(
                f"Only {currency} is supported; every amount must be in it.",
                code="currency_not_supported",
                errors=[{"field": f"body.{where}.currency", "message": f"must be {currency}"}],
            )


def amounts(payload: OrderCreate) -> dict[str, Decimal]:
    """The order's stored amounts (subtotal, discount, shipping, tax, total), checked: every
    amount in the service's currency, the total matching the lines, the subtotal storable."""
    check_currency(payload.money_fields())
    discount, shipping, tax = (
        value.value if value is not None else ZERO
        for value in (payload.discount, payload.shipping, payload.tax)
    )
    total = payload.total.value
    if payload.items:
        subtotal = sum((i.quantity * i.unit_price.value for i in payload.items), ZERO)
        expected = subtotal - discount + shipping + tax
        if expected != total:
            raise ValidationFailed(
                f"The total must be {expected:.2f}: Σ quantity × unit_price − discount + "
                "shipping + tax.",
                code="total_mismatch",
                errors=[{"field": "body.total.amount", "message": f"must be {expected:.2f}"}],
                extensions={"expected_total": _money_json(expected)},
            )
    else:
        subtotal = total + discount - shipping - tax
        if subtotal < 0:
            raise ValidationFailed(
                "Without lines, total + discount − shipping − tax is the subtotal and must not "
                "be negative.",
                code="total_mismatch",
                errors=[{"field": "body.total.amount", "message": "less than shipping + tax"}],
            )
    if subtotal >= MONEY_LIMIT:
        raise ValidationFailed(
            "The subtotal must be less than 1,000,000,000,000.",
            code="amount_out_of_range",
            errors=[{"field": "body.items", "message": "the lines add up to too much"}],
        )
    return {
        "subtotal": subtotal,
        "discount": discount,
        "shipping": shipping,
        "tax": tax,
        "total": total,
    }


def order_values(
    payload: OrderCreate, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The columns of a new order (``repository.ORDER_COLUMNS``) and its lines
    (``repository.ITEM_COLUMNS``, ``line`` and ``refunded_quantity``), checked (``amounts``)."""
    values: dict[str, Any] = {
        "customer_id": payload.customer_id,
        "id": new_id(),
        "status": payload.status.value,
        "channel": payload.channel.value,
        "currency": get_settings().currency,
        **amounts(payload),
        "refunded_amount": ZERO,
        "occurred_at": payload.occurred_at or now,
        "source": payload.source,
        "external_id": payload.external_id,
        "attributes": payload.attributes or {},
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    items = [
        {
            "line": line,
            "sku": item.sku,
            "name": item.name,
            "category": item.category,
            "quantity": item.quantity,
            "unit_price": item.unit_price.value,
            "refunded_quantity": 0,
        }
        for line, item in enumerate(payload.items, start=1)
    ]
    return values, items


def new_order(
    payload: OrderCreate, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], OrderOut]:
    """``order_values``, and the order as it will be stored (for the event and the answer)."""
    values, items = order_values(payload, now)
    return values, items, repository.order_from_row({**values, "items": items})


def _time(value: datetime) -> str:
    # As pydantic writes a UTC time in JSON.
    return value.isoformat().replace("+00:00", "Z")


def order_document(payload: OrderCreate, order_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """A new order as its ``order.created`` event carries it: ``snapshot`` of the ``OrderOut`` it
    will be (the tests hold them equal), built straight from the checked body (``amounts``), for
    the batch, which writes its orders from these documents (``repository.insert_batch``)."""
    currency = get_settings().currency
    created = _time(now)
    return {
        "id": str(order_id),
        "customer_id": str(payload.customer_id),
        "source": payload.source,
        "external_id": payload.external_id,
        "status": payload.status.value,
        "channel": payload.channel.value,
        "occurred_at": _time(payload.occurred_at or now),
        **{
            name: {"amount": f"{value:.2f}", "currency": currency}
            for name, value in amounts(payload).items()
        },
        "attributes": payload.attributes or {},
        "items": [
            {
                "line": line,
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "quantity": item.quantity,
                # Checked to be in ``currency`` by ``amounts``, with exactly 2 decimals by Money.
                "unit_price": {"amount": item.unit_price.amount, "currency": currency},
                "refunded_quantity": 0,
            }
            for line, item in enumerate(payload.items, start=1)
        ],
        "refunded": {"amount": "0.00", "currency": currency},
        "refund_state": refund_state(ZERO, ZERO).value,
        "version": 1,
        "created_at": created,
        "updated_at": created,
    }


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(getattr(exc.orig, "__cause__", None), "sqlstate", None) or getattr(
        exc.orig, "sqlstate", None
    )


async def create_order(
    conn: Connection, caller: Caller, payload: OrderCreate, *, only_write: bool = True
) -> tuple[OrderOut, bool]:
    """Record an order; returns it and whether it is new. The same (source, external_id) for the
    same customer returns the stored one (False; nothing written, no event).

    ``only_write``: this is the unit of work's only write (REST, GraphQL), so the statement runs
    without BEGIN/COMMIT."""
    caller.require("orders:write")
    values, items, order = new_order(payload, clock.now())
    event = events.customer_event("order.created", snapshot(order))
    try:
        created = await repository.insert_with_event(
            conn, values, items, event, only_write=only_write
        )
    except IntegrityError as exc:
        if _constraint(exc) == repository.CUSTOMER_FK:
            raise customer_not_found(payload.customer_id) from None
        raise
    except DBAPIError as exc:
        if _sqlstate(exc) == _OUT_OF_RANGE:
            raise _out_of_range() from None
        raise
    if created:
        return order, True
    return await _not_inserted(conn, payload), False


def _constraint(exc: IntegrityError) -> str | None:
    name: str | None = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
    return name


def external_id_conflict(source: str, external_id: str) -> Conflict:
    return Conflict(
        f"({source!r}, {external_id!r}) is an order of another customer.",
        code="external_id_conflict",
    )


async def _not_inserted(conn: Connection, payload: OrderCreate) -> OrderOut:
    """Why a create wrote nothing: the stored order of its (source, external_id), or the error."""
    if not await repository.customer_is_live(conn, payload.customer_id):
        raise customer_not_found(payload.customer_id)
    if payload.source is not None and payload.external_id is not None:
        stored = await repository.get_by_external_id(conn, payload.source, payload.external_id)
        if stored is not None and stored.customer_id == payload.customer_id:
            return stored
        if stored is not None:
            raise external_id_conflict(payload.source, payload.external_id)
    # Its pair was taken by a write that has since gone away: nothing to return.
    raise Conflict("The order conflicts with a concurrent write; retry it.")


async def get_order(conn: Connection, caller: Caller, order_id: uuid.UUID) -> OrderOut:
    caller.require("orders:read")
    order = await repository.get(conn, order_id)
    if order is None:
        raise _order_not_found(order_id)
    return order


async def find_order(conn: Connection, caller: Caller, order_id: uuid.UUID) -> OrderOut | None:
    caller.require("orders:read")
    return await repository.get(conn, order_id)


async def get_orders(
    conn: Connection, caller: Caller, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, OrderOut]:
    caller.require("orders:read")
    return {o.id: o for o in await repository.get_many(conn, ids)}


async def list_orders(
    conn: Connection,
    caller: Caller,
    filters: OrderFilter,
    *,
    sort: OrderSort,
    limit: int,
    cursor: str | None,
) -> Page[OrderOut]:
    caller.require("orders:read")
    query = repository.list_query(filters, sort)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort=sort.value)
    return page.mapped(repository.order_from_row)


# ---------------------------------------------------------------------------------------- refunds


def _exceeds(remaining: Decimal, detail: str, errors: list[dict[str, str]]) -> Conflict:
    return Conflict(
        detail,
        code="refund_exceeds_remaining",
        errors=errors,
        extensions={"remaining": _money_json(remaining)},
    )


def _lines_value(order: OrderOut, payload: RefundCreate, remaining: Decimal) -> Decimal:
    """What the lines of a refund by lines are worth: Σ quantity × unit_price, less the order's
    discount in proportion, at most what is left of the total. Every line must be the order's and
    have the units left."""
    assert payload.items is not None
    by_line = {item.line: item for item in payload.items}
    stored = {item.line: item for item in order.items}
    value = ZERO
    too_many: list[dict[str, str]] = []
    for n, (line, wanted) in enumerate(by_line.items()):
        item = stored.get(line)
        if item is None:
            raise ValidationFailed(
                f"The order has no line {line}.",
                code="line_not_found",
                errors=[{"field": f"body.items.{n}.line", "message": "no such line"}],
            )
        left = item.quantity - item.refunded_quantity
        if wanted.quantity > left:
            too_many.append(
                {"field": f"body.items.{n}.quantity", "message": f"only {left} left to refund"}
            )
        value += wanted.quantity * item.unit_price.value
    if too_many:
        raise _exceeds(remaining, "More units than are left to refund on a line.", too_many)
    subtotal, discount = order.subtotal.value, order.discount.value
    if discount and subtotal > 0:
        value = (value * max(subtotal - discount, ZERO) / subtotal).quantize(CENT, ROUND_HALF_UP)
    return min(value, remaining)


def _same_refund(stored: RefundOut, payload: RefundCreate, amount: Decimal | None) -> bool:
    lines = [line.model_dump() for line in payload.items] if payload.items is not None else None
    stored_lines = (
        [line.model_dump() for line in stored.items] if stored.items is not None else None
    )
    return (
        stored_lines == lines
        and (amount is None or stored.amount.value == amount)
        and stored.reason == payload.reason
        and (payload.occurred_at is None or payload.occurred_at == stored.occurred_at)
    )


async def refund_order(
    conn: Connection, caller: Caller, order_id: uuid.UUID, payload: RefundCreate
) -> tuple[RefundOut, bool]:
    """Give money back on an order; returns the refund and whether it is new (the same
    ``external_id`` again with the same body returns the stored refund, False). Never more than
    what is left of the total: the order is locked, so concurrent refunds are checked one after
    the other."""
    caller.require("orders:write")
    if payload.amount is not None:
        check_currency([("amount", payload.amount)])
    order = await repository.get_for_update(conn, order_id)
    if order is None:
        raise _order_not_found(order_id)
    amount = payload.amount.value if payload.amount is not None else None
    if payload.external_id is not None:
        stored = await repository.refund_by_external_id(conn, order.id, payload.external_id)
        if stored is not None:
            if _same_refund(stored, payload, amount):
                return stored, False
            raise Conflict(
                f"The refund {payload.external_id!r} of this order was recorded with another body.",
                code="external_id_conflict",
            )
    if order.status is OrderStatus.CANCELLED:
        raise Conflict("A cancelled order cannot be refunded.", code="order_cancelled")
    remaining = order.total.value - order.refunded.value
    if amount is None:
        amount = _lines_value(order, payload, remaining)
        if amount <= 0 and remaining > 0:
            raise Conflict("These lines are worth nothing to refund.", code="nothing_to_refund")
    if amount > remaining or remaining <= 0:
        raise _exceeds(
            remaining,
            f"Only {remaining:.2f} of the total is left to refund.",
            [{"field": "body.amount.amount", "message": f"at most {remaining:.2f}"}]
            if payload.amount is not None
            else [],
        )
    now = clock.now()
    lines = [line.model_dump() for line in payload.items] if payload.items is not None else None
    values: dict[str, Any] = {
        "customer_id": order.customer_id,
        "id": new_id(),
        "order_id": order.id,
        "amount": amount,
        "items": lines,
        "reason": payload.reason,
        "external_id": payload.external_id,
        "occurred_at": payload.occurred_at or now,
        "created_at": now,
        "currency": order.total.currency,
    }
    refund = repository.refund_from_row(values)
    after = _refunded(order, refund, now)
    data = {**snapshot(after), "refund": refund.model_dump(mode="json")}
    try:
        await repository.insert_refund(conn, values, events.customer_event("order.refunded", data))
    except DBAPIError as exc:
        if _sqlstate(exc) == _OUT_OF_RANGE:
            raise _out_of_range() from None
        raise
    return refund, True


def _refunded(order: OrderOut, refund: RefundOut, now: datetime) -> OrderOut:
    """The order as the refund leaves it."""
    given = {line.line: line.quantity for line in refund.items or []}
    refunded = order.refunded.value + refund.amount.value
    items = [
        item.model_copy(update={"refunded_quantity": item.refunded_quantity + given[item.line]})
        if item.line in given
        else item
        for item in order.items
    ]
    return order.model_copy(
        update={
            "items": items,
            "refunded": Money.of(refunded, order.total.currency),
            "refund_state": refund_state(order.total.value, refunded),
            "version": order.version + 1,
            "updated_at": now,
        }
    )


async def get_refund(
    conn: Connection, caller: Caller, order_id: uuid.UUID, refund_id: uuid.UUID
) -> RefundOut:
    caller.require("orders:read")
    refund = await repository.get_refund(conn, order_id, refund_id)
    if refund is None:
        raise NotFound(f"No refund {refund_id} of order {order_id}.", code="refund_not_found")
    return refund


async def list_refunds(
    conn: Connection,
    caller: Caller,
    order_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[RefundOut]:
    caller.require("orders:read")
    order = await repository.get(conn, order_id)
    if order is None:
        raise _order_not_found(order_id)
    query = repository.refunds_query(order.customer_id, order.id)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort="occurred_at")
    return page.mapped(repository.refund_from_row)
