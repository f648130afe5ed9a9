"""The order figures of ``customer_metrics`` after any sequence of orders, refunds and partial
refunds: what each order's and refund's own transaction left (the incremental update) equals an
independent model of the sequence, and a full refresh finds nothing to correct."""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx2 as httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import text

from app.analytics import refresh
from app.core import clock
from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import KehuError
from app.db import read_connection, unit_of_work
from app.orders import service as orders
from app.orders.enums import OrderStatus
from app.orders.schemas import OrderCreate, RefundCreate
from tests.fixtures.factories import create_customer

ADMIN = Caller(key_id=uuid.uuid4(), name="test", scopes=frozenset({"admin"}))
FIGURES = (
    "order_count",
    "gross_revenue",
    "refunded_amount",
    "net_revenue",
    "refund_count",
    "first_order_at",
    "last_order_at",
    "average_order_value",
)

cents = st.integers(min_value=0, max_value=500_000)
an_order = st.fixed_dictionaries(
    {
        "op": st.just("order"),
        # None: an order sent without lines (total only)
        "lines": st.one_of(
            st.none(),
            st.lists(st.tuples(st.integers(1, 4), st.integers(0, 20_000)), min_size=1, max_size=3),
        ),
        "total": cents,
        "cancelled": st.booleans(),
        "days_ago": st.integers(0, 800),
    }
)
a_refund = st.fixed_dictionaries(
    {
        "op": st.just("refund"),
        "order": st.integers(0, 20),
        # a share of the total (by amount, possibly more than is left) or units of a line
        "percent": st.integers(1, 120),
        "line": st.one_of(st.none(), st.tuples(st.integers(0, 2), st.integers(1, 4))),
    }
)
sequences = st.lists(st.one_of(an_order, an_order, a_refund), min_size=1, max_size=10)


@dataclass
class StoredOrder:
    id: uuid.UUID
    total: Decimal
    counted: bool
    lines: list[tuple[int, Decimal]]  # (quantity, unit price) per line
    refunded: Decimal = Decimal(0)
    refunded_units: list[int] = field(default_factory=list)


def _money(value: Decimal) -> dict[str, str]:
    return {"amount": f"{value:.2f}", "currency": get_settings().currency}


async def _apply(customer_id: uuid.UUID, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the sequence through the services, one transaction per step as the API does; the figures
    a model of it expects."""
    now = clock.now()
    placed: list[StoredOrder] = []
    occurred: list[datetime] = []
    refunds = 0
    for step in steps:
        if step["op"] == "order":
            lines = [(q, Decimal(c) / 100) for q, c in step["lines"] or []]
            total = (
                sum((q * p for q, p in lines), Decimal(0))
                if lines
                else Decimal(step["total"]) / 100
            )
            at = now - timedelta(days=step["days_ago"], minutes=len(placed))
            body: dict[str, Any] = {
                "customer_id": str(customer_id),
                "status": OrderStatus.CANCELLED if step["cancelled"] else OrderStatus.PAID,
                "occurred_at": at.isoformat(),
                "total": _money(total),
                "items": [
                    {"sku": f"S{i}", "quantity": q, "unit_price": _money(p)}
                    for i, (q, p) in enumerate(lines)
                ],
            }
            async with unit_of_work() as conn:
                order, created = await orders.create_order(
                    conn, ADMIN, OrderCreate.model_validate(body)
                )
            assert created
            stored = StoredOrder(order.id, total, not step["cancelled"], lines)
            stored.refunded_units = [0] * len(lines)
            placed.append(stored)
            if stored.counted:
                occurred.append(order.occurred_at)
            continue
        if not placed:
            continue
        target = placed[step["order"] % len(placed)]
        left = target.total - target.refunded
        if step["line"] is not None and target.lines:
            index = step["line"][0] % len(target.lines)
            quantity, price = target.lines[index]
            units = step["line"][1]
            payload: dict[str, Any] = {"items": [{"line": index + 1, "quantity": units}]}
            fits = target.refunded_units[index] + units <= quantity
            amount = min(units * price, left)
        else:
            amount = (target.total * step["percent"] / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
            payload = {"amount": _money(amount)}
            fits = Decimal("0.01") <= amount <= left
        accepted = target.counted and fits and amount > 0
        try:
            refund = RefundCreate.model_validate(payload)
            async with unit_of_work() as conn:
                await orders.refund_order(conn, ADMIN, target.id, refund)
        except (KehuError, ValidationError):
            assert not accepted, f"refused a refund the model accepts: {payload} on {target}"
            continue
        assert accepted, f"accepted a refund the model refuses: {payload} on {target}"
        target.refunded += amount
        if "items" in payload:
            target.refunded_units[index] += units
        refunds += 1
    counted = [o for o in placed if o.counted]
    gross = sum((o.total for o in counted), Decimal(0))
    refunded = sum((o.refunded for o in counted), Decimal(0))
    expected: dict[str, Any] = {
        "order_count": len(counted),
        "gross_revenue": gross,
        "refunded_amount": refunded,
        "net_revenue": gross - refunded,
        "refund_count": refunds,
        "first_order_at": min(occurred, default=None),
        "last_order_at": max(occurred, default=None),
        "average_order_value": ((gross - refunded) / len(counted)).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        if counted
        else None,
    }
    return expected


async def _figures(customer_id: uuid.UUID) -> dict[str, Any] | None:
    async with read_connection() as conn:
        row = (
            await conn.execute(
                text(f"SELECT {', '.join(FIGURES)} FROM customer_metrics WHERE customer_id = :c"),
                {"c": customer_id},
            )
        ).first()
    return None if row is None else dict(row._mapping)


async def test_incremental_figures_equal_the_model_and_a_full_refresh(
    client: httpx.AsyncClient,
) -> None:
    loop = asyncio.get_running_loop()

    def run(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=120)

    @given(steps=sequences)
    @settings(
        max_examples=50,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def property_(steps: list[dict[str, Any]]) -> None:
        customer_id = uuid.UUID(run(create_customer(client))["id"])
        expected = run(_apply(customer_id, steps))
        nothing_counted = expected["order_count"] == 0 and expected["refund_count"] == 0

        def check(figures: dict[str, Any] | None) -> None:
            if nothing_counted:  # cancelled orders only: no row, or one of zeros
                assert figures is None or figures["order_count"] == 0, (figures, steps)
            else:
                assert figures == expected, steps

        check(run(_figures(customer_id)))
        counted = run(refresh.refresh(as_of=clock.now().date(), refresh_id=None))
        assert counted["figures_corrected"] == 0, (counted, steps)
        check(run(_figures(customer_id)))

    await asyncio.to_thread(property_)
