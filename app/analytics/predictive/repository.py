"""Every SQL statement of the predictive models (Core or driver statements, typed results).

The customer summaries the models read are computed by PostgreSQL, set-based: a customer's
non-cancelled orders before the cutoff, grouped by UTC day (the orders of one day are one
purchase, worth the sum of ``total - refunded_amount``), give ``x`` (purchase days - 1), ``t_x``
(last day - first day, in days), the age (calibration end - first day, in days) and the mean
spend of the repeat days (the first day excluded, as the Gamma-Gamma model wants it).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Table, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import distinct_on

from app.analytics.models import AnalyticsModelFit
from app.analytics.predictive.bgnbd import Array
from app.analytics.predictive.schemas import STORED_FIELDS, ModelFitOut
from app.db import Connection
from app.db.driver import DriverStatement

model_fits: Table = AnalyticsModelFit.__table__  # type: ignore[assignment]

_STORED = [model_fits.c[name] for name in STORED_FIELDS]
_NEWEST_PER_KIND = (
    select(*_STORED)
    .ext(distinct_on(model_fits.c.kind))
    .order_by(model_fits.c.kind, model_fits.c.fitted_at.desc(), model_fits.c.id.desc())
)
_INSERT_FIT = insert(model_fits)
_FIRST_PURCHASE_DAY = text(
    "SELECT (min(occurred_at) AT TIME ZONE 'UTC')::date FROM orders "
    "WHERE status <> 'cancelled' AND occurred_at < :cutoff"
).bindparams(bindparam("cutoff"))

# The purchase days of the customers of ``{customers}`` (a CTE of customer_id) up to $cutoff,
# and each customer's summary over the days up to $calibration_end (a date); days after it are
# the holdout window, counted as ``holdout_days``.
_SUMMARIES = """
days AS (
    SELECT o.customer_id, (o.occurred_at AT TIME ZONE 'UTC')::date AS day,
           sum(o.total - o.refunded_amount) AS spend
    FROM {customers} AS c JOIN orders AS o ON o.customer_id = c.customer_id
    WHERE o.occurred_at < $cutoff AND o.status <> 'cancelled'{orders_in}
    GROUP BY 1, 2
),
calibration AS (
    SELECT customer_id, day, spend,
           day = min(day) OVER (PARTITION BY customer_id) AS first_day
    FROM days WHERE day <= $calibration_end
),
summaries AS (
    SELECT customer_id,
           count(*) - 1 AS x,
           max(day) - min(day) AS t_x_days,
           $calibration_end - min(day) AS age_days,
           (avg(spend) FILTER (WHERE NOT first_day))::float8 AS repeat_mean
    FROM calibration GROUP BY customer_id
),
holdout AS (
    SELECT customer_id, count(*) AS holdout_days
    FROM days WHERE day > $calibration_end GROUP BY customer_id
)"""


def _numbered(sql: str, names: Sequence[str]) -> str:
    for number, name in enumerate(names, start=1):
        sql = sql.replace(f"${name}", f"${number}::{_TYPES[name]}")
    return sql


_TYPES = {
    "cutoff": "timestamptz",
    "calibration_end": "date",
    "sample_size": "int",
    "after": "uuid",
    "last": "uuid",
}

# The fitting sample: ``sample_size`` customers with a purchase before the calibration cutoff,
# pseudo-random and the same on every run (ordered by a hash of their id), with their summary and
# their purchase days in the holdout window.
_SAMPLE_NAMES = ("cutoff", "calibration_end", "sample_size")
_SAMPLE = DriverStatement(
    _numbered(
        "WITH sample AS (\n"
        "    SELECT customer_id FROM customer_metrics\n"
        "    WHERE first_order_at < ($calibration_end + 1)::timestamp AT TIME ZONE 'UTC'\n"
        "    ORDER BY md5(customer_id::text), customer_id LIMIT $sample_size\n"
        "),"
        + _SUMMARIES.format(customers="sample", orders_in="")
        + """
SELECT s.x, s.t_x_days, s.age_days, s.repeat_mean, coalesce(h.holdout_days, 0) AS holdout_days
FROM summaries AS s LEFT JOIN holdout AS h USING (customer_id)""",
        _SAMPLE_NAMES,
    ),
    _SAMPLE_NAMES,
)

# The last key of the chunk of ``chunk_size`` customers of customer_metrics after the key $1.
_CHUNK_END = DriverStatement(
    """
    SELECT coalesce(
        (SELECT customer_id FROM customer_metrics WHERE customer_id > $1::uuid
         ORDER BY customer_id OFFSET $2::int - 1 LIMIT 1),
        (SELECT customer_id FROM customer_metrics WHERE customer_id > $1::uuid
         ORDER BY customer_id DESC LIMIT 1)
    ) AS last""",
    ["after", "chunk_size"],
)

# The customers of customer_metrics in ($after, $last], each with their summary (NULLs for a
# customer without a purchase before the cutoff), in customer order. The key range is named on
# the orders too: the planner then reads the chunk's orders by the primary key's range instead of
# hashing every order once per chunk (2.6 s a chunk at 5,000,000 orders).
_CHUNK_NAMES = ("after", "last", "cutoff", "calibration_end")
_CHUNK = DriverStatement(
    _numbered(
        "WITH chunk AS (\n"
        "    SELECT customer_id FROM customer_metrics\n"
        "    WHERE customer_id > $after AND customer_id <= $last\n"
        "),"
        + _SUMMARIES.format(
            customers="chunk",
            orders_in="\n      AND o.customer_id > $after AND o.customer_id <= $last",
        )
        + """
SELECT c.customer_id, s.x, s.t_x_days, s.age_days, s.repeat_mean
FROM chunk AS c LEFT JOIN summaries AS s USING (customer_id)
ORDER BY c.customer_id""",
        _CHUNK_NAMES,
    ),
    _CHUNK_NAMES,
)

_WRITE_PREDICTIONS = DriverStatement(
    """
UPDATE customer_metrics AS m
SET p_alive = u.p_alive,
    churn_risk = u.churn_risk,
    expected_purchases_90d = u.expected_purchases_90d,
    expected_purchases_365d = u.expected_purchases_365d,
    expected_order_value = round(u.expected_order_value::numeric, 2),
    clv_12m = round(u.clv_12m::numeric, 2)
FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],
            $7::float8[])
     AS u(customer_id, p_alive, churn_risk, expected_purchases_90d, expected_purchases_365d,
          expected_order_value, clv_12m)
WHERE m.customer_id = u.customer_id""",
    [
        "customer_ids",
        "p_alive",
        "churn_risk",
        "expected_purchases_90d",
        "expected_purchases_365d",
        "expected_order_value",
        "clv_12m",
    ],
)

_FIRST_KEY = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class Summaries:
    """Customers' purchase summaries as arrays (times in days, not yet in the model's unit)."""

    x: Array
    t_x_days: Array
    age_days: Array
    # NaN where there is no repeat purchase.
    repeat_mean: Array
    holdout_days: Array

    @property
    def size(self) -> int:
        return int(self.x.size)


def _column(rows: Sequence[Any], name: str) -> Array:
    return np.fromiter(
        (np.nan if row[name] is None else row[name] for row in rows),
        dtype=np.float64,
        count=len(rows),
    )


def _summaries(rows: Sequence[Any], *, holdout: bool) -> Summaries:
    return Summaries(
        x=_column(rows, "x"),
        t_x_days=_column(rows, "t_x_days"),
        age_days=_column(rows, "age_days"),
        repeat_mean=_column(rows, "repeat_mean"),
        holdout_days=_column(rows, "holdout_days") if holdout else np.zeros(len(rows)),
    )


async def fitting_sample(
    conn: Connection, *, cutoff: datetime, calibration_end: date, sample_size: int
) -> Summaries:
    """The summaries of the fitting sample over the days up to ``calibration_end``, and their
    purchase days after it, up to ``cutoff`` (the holdout window; empty when ``cutoff`` is the
    end of ``calibration_end``)."""
    rows = await _SAMPLE.fetch(
        conn, {"cutoff": cutoff, "calibration_end": calibration_end, "sample_size": sample_size}
    )
    return _summaries(rows, holdout=True)


async def first_purchase_day(conn: Connection, *, cutoff: datetime) -> date | None:
    """The UTC day of the first purchase in the data before ``cutoff``."""
    day: date | None = (await conn.execute(_FIRST_PURCHASE_DAY, {"cutoff": cutoff})).scalar()
    return day


@dataclass(frozen=True, slots=True)
class Chunk:
    customer_ids: list[uuid.UUID]
    summaries: Summaries

    @property
    def last_key(self) -> uuid.UUID:
        return self.customer_ids[-1]


async def customer_chunk(
    conn: Connection,
    *,
    after: uuid.UUID | None,
    chunk_size: int,
    cutoff: datetime,
    calibration_end: date,
) -> Chunk | None:
    """The next ``chunk_size`` customers of customer_metrics after ``after`` (from the first
    when None) with their summaries as of ``calibration_end``; None past the last."""
    after = after or _FIRST_KEY
    last = (await _CHUNK_END.fetch(conn, {"after": after, "chunk_size": chunk_size}))[0]["last"]
    if last is None:
        return None
    rows = await _CHUNK.fetch(
        conn,
        {"after": after, "last": last, "cutoff": cutoff, "calibration_end": calibration_end},
    )
    return Chunk(
        customer_ids=[row["customer_id"] for row in rows],
        summaries=_summaries(rows, holdout=False),
    )


def _nullable(values: Array) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


async def write_predictions(
    conn: Connection, customer_ids: list[uuid.UUID], predictions: dict[str, Array]
) -> int:
    """Each customer's predictions (non-finite values stored as NULL), in one statement."""
    await _WRITE_PREDICTIONS.fetch(
        conn,
        {
            "customer_ids": customer_ids,
            **{name: _nullable(values) for name, values in predictions.items()},
        },
    )
    return len(customer_ids)


async def insert_fit(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(_INSERT_FIT, values)


async def newest_fits(conn: Connection) -> list[ModelFitOut]:
    """The newest fit of each kind, ordered by kind (``bg_nbd`` before ``gamma_gamma``)."""
    rows = (await conn.execute(_NEWEST_PER_KIND)).all()
    return [ModelFitOut.from_stored(row._mapping) for row in rows]
