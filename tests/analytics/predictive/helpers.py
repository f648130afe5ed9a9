"""Order histories for the predictive step, written straight to the tables (the step reads
``orders`` and ``customer_metrics``; how orders get there is the orders domain's business and is
exercised end to end by test_cdnow.py), and the summaries computed from them in Python, as
the definitions say, to check the SQL against."""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import text

from app.db import unit_of_work


@dataclass(frozen=True)
class SeedOrder:
    customer: str
    at: datetime
    total: Decimal
    refunded: Decimal = Decimal("0")
    status: str = "paid"


@dataclass(frozen=True)
class Summary:
    x: int
    t_x_days: int
    age_days: int
    repeat_mean: float | None
    holdout_days: int = 0


def customer_id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"kehu-test:{name}")


async def seed(orders: list[SeedOrder], *, customers_without_orders: int = 0) -> None:
    names = sorted({o.customer for o in orders})
    extra = [f"no-orders-{n}" for n in range(customers_without_orders)]
    async with unit_of_work() as conn:
        await conn.execute(
            text("INSERT INTO customers (id) SELECT unnest(CAST(:ids AS uuid[]))"),
            {"ids": [customer_id(n) for n in names + extra]},
        )
        await conn.execute(
            text(
                "INSERT INTO orders (customer_id, id, status, channel, currency, subtotal, total,"
                " refunded_amount, occurred_at) VALUES (:customer_id, :id, :status, 'web', 'CNY',"
                " :total, :total, :refunded, :at)"
            ),
            [
                {
                    "customer_id": customer_id(o.customer),
                    "id": uuid.uuid4(),
                    "status": o.status,
                    "total": o.total,
                    "refunded": o.refunded,
                    "at": o.at,
                }
                for o in orders
            ],
        )
        # What the orders domain keeps current; the step reads first_order_at to sample.
        await conn.execute(
            text(
                "INSERT INTO customer_metrics (customer_id, order_count, gross_revenue,"
                " first_order_at, last_order_at)"
                " SELECT customer_id, count(*), sum(total), min(occurred_at), max(occurred_at)"
                " FROM orders WHERE status <> 'cancelled' GROUP BY customer_id"
                " ON CONFLICT (customer_id) DO UPDATE SET order_count = excluded.order_count,"
                " gross_revenue = excluded.gross_revenue,"
                " first_order_at = excluded.first_order_at, last_order_at = excluded.last_order_at"
            )
        )


def summaries(orders: list[SeedOrder], *, as_of: date, holdout_days: int = 0) -> dict[str, Summary]:
    """The definitions, literally: non-cancelled orders before the end of ``as_of`` (UTC), one
    purchase per UTC day worth Σ (total − refunded); calibration up to ``as_of − holdout_days``."""
    cutoff = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), UTC)
    calibration_end = as_of - timedelta(days=holdout_days)
    days: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for o in orders:
        if o.status != "cancelled" and o.at < cutoff:
            days[o.customer][o.at.astimezone(UTC).date()] += o.total - o.refunded
    result = {}
    for name, spend in days.items():
        calibration = sorted(d for d in spend if d <= calibration_end)
        if not calibration:
            continue
        first, last = calibration[0], calibration[-1]
        repeat = [spend[d] for d in calibration[1:]]
        result[name] = Summary(
            x=len(calibration) - 1,
            t_x_days=(last - first).days,
            age_days=(calibration_end - first).days,
            repeat_mean=float(sum(repeat) / len(repeat)) if repeat else None,
            holdout_days=sum(1 for d in spend if d > calibration_end),
        )
    return result


def simulated_orders(
    rng: np.random.Generator, customers: int, *, start: date, end: date, prefix: str = "sim"
) -> list[SeedOrder]:
    """Customers who buy at their own rate until they drop out, sometimes twice a day, with
    cancelled and refunded orders among them."""
    orders = []
    span = (end - start).days
    for n in range(customers):
        name = f"{prefix}-{n:05d}"
        at = datetime.combine(start, datetime.min.time(), UTC) + timedelta(
            days=int(rng.integers(0, span)), seconds=int(rng.integers(0, 86_400))
        )
        gap_days = float(rng.gamma(1.5, 20))
        dropout = float(rng.beta(1.0, 3.0))
        # Each customer spends around a mean of their own (the heterogeneity Gamma-Gamma fits).
        scale = float(rng.gamma(4.0, 3.0))
        limit = datetime.combine(end, datetime.min.time(), UTC)
        while at < limit:
            total = Decimal(str(round(float(rng.gamma(4.0, scale)) + 1, 2)))
            roll = rng.random()
            if roll < 0.05:
                orders.append(SeedOrder(name, at, total, status="cancelled"))
            elif roll < 0.1:
                orders.append(SeedOrder(name, at, total, refunded=(total / 2).quantize(total)))
            else:
                orders.append(SeedOrder(name, at, total))
            if rng.random() < dropout:
                break
            at += timedelta(seconds=int(rng.exponential(gap_days * 86_400)))
    return orders
