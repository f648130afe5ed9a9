"""Test helpers of the orders tests: the events recorded for orders, a customer's metrics row and
the same figures recomputed from the stored orders (the full refresh's definitions)."""

import uuid
from typing import Any

from sqlalchemy import select, text

from app.db import read_connection
from app.events.models import Event

FIGURES = (
    "order_count",
    "gross_revenue",
    "refunded_amount",
    "net_revenue",
    "refund_count",
    "first_order_at",
    "last_order_at",
)


async def events_of(type: str, customer_id: str | None = None) -> list[Any]:
    """The events of this type (of this customer), in sequence order."""
    query = select(Event.__table__).where(Event.type == type).order_by(Event.sequence, Event.id)
    if customer_id is not None:
        query = query.where(Event.customer_id == uuid.UUID(customer_id))
    async with read_connection() as conn:
        return list((await conn.execute(query)).all())


async def metrics_of(customer_id: str) -> dict[str, Any] | None:
    """The customer's customer_metrics row (order figures, revision, average), or None."""
    async with read_connection() as conn:
        row = (
            await conn.execute(
                text(
                    f"SELECT {', '.join(FIGURES)}, average_order_value, revision, updated_at "
                    "FROM customer_metrics WHERE customer_id = :id"
                ),
                {"id": uuid.UUID(customer_id)},
            )
        ).first()
    return None if row is None else dict(row._mapping)


async def recomputed(customer_id: str) -> dict[str, Any]:
    """The order figures recomputed from the stored orders and refunds."""
    async with read_connection() as conn:
        row = (
            await conn.execute(
                text(
                    """
                    SELECT count(*) AS order_count,
                           coalesce(sum(o.total), 0) AS gross_revenue,
                           coalesce(sum(r.refunded), 0) AS refunded_amount,
                           coalesce(sum(o.total), 0) - coalesce(sum(r.refunded), 0) AS net_revenue,
                           coalesce(sum(r.refunds), 0) AS refund_count,
                           min(o.occurred_at) AS first_order_at,
                           max(o.occurred_at) AS last_order_at
                    FROM orders AS o
                    LEFT JOIN LATERAL (
                        SELECT sum(amount) AS refunded, count(*) AS refunds
                        FROM order_refunds AS f
                        WHERE f.customer_id = o.customer_id AND f.order_id = o.id
                    ) AS r ON true
                    WHERE o.customer_id = :id AND o.status <> 'cancelled'
                    """
                ),
                {"id": uuid.UUID(customer_id)},
            )
        ).one()
    return dict(row._mapping)
