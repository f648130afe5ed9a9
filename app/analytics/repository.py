"""Every SQL statement of customer analytics: the refresh's set-based steps, the refreshes
themselves, a customer's metrics and the overview (Core and SQL text, typed results).

The refresh works in chunks of customers (keyset on the customer id, ``(lo, hi]``), one short
transaction each, so an order's own transaction never waits long on the refresh's row locks:

1. ``lock_chunk``: the chunk's metrics rows, locked in customer order (as order writers lock them),
   so the refresh and a batch of orders never wait on each other in a cycle.
2. ``write_order_figures``: the order figures over all orders, written only where they differ,
   and only on rows whose ``revision`` is still the one read with the aggregate (one snapshot): a
   concurrent order's incremental update moves the revision, and READ COMMITTED re-checks the
   target row against it, so that update is never overwritten.
3. ``write_refresh_figures``: recency, RFM, value tier and lifecycle stage as of the cutoff; each
   change of stage appends its ``customer.lifecycle_changed`` event in the same statement.

The RFM scores and value tiers rank customers across all chunks: ``rank_boundaries`` reads the
boundaries once (one snapshot of every order), and each chunk places its customers among them.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    Numeric,
    Select,
    String,
    Table,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.types import Uuid

from app.analytics.enums import LifecycleStage, RefreshStatus
from app.analytics.models import AnalyticsRefresh, CustomerMetrics
from app.analytics.rules import SEGMENT_GRID, Cutoffs
from app.analytics.schemas import CustomerMetricsOut, RefreshOut
from app.core.schemas import Money
from app.db import Connection

metrics: Table = CustomerMetrics.__table__  # type: ignore[assignment]
refreshes: Table = AnalyticsRefresh.__table__  # type: ignore[assignment]

LIFECYCLE_CHANGED = "customer.lifecycle_changed"

# ----------------------------------------------------------------------------------- chunks

_NEXT_BOUND = text(
    """
    WITH chunk AS MATERIALIZED (
        SELECT id FROM customers WHERE id > :after ORDER BY id LIMIT :size
    )
    SELECT (SELECT id FROM chunk ORDER BY id DESC LIMIT 1) AS hi,
           (SELECT count(*) FROM chunk) AS customers
    """
).bindparams(bindparam("after", type_=Uuid()), bindparam("size", type_=Integer()))

# Below every UUIDv7 (and every id at all but this one, which no customer has).
FIRST_BOUND = uuid.UUID(int=0)


async def next_bound(conn: Connection, after: uuid.UUID, size: int) -> tuple[uuid.UUID | None, int]:
    """The highest customer id of the next ``size`` customers after ``after`` (None at the end),
    and how many customers that is. Every customer with orders or metrics is a customer (foreign
    keys), so these chunks cover them all."""
    row = (await conn.execute(_NEXT_BOUND, {"after": after, "size": size})).one()
    return row.hi, int(row.customers)


_LOCK_CHUNK = text(
    """
    SELECT count(*) FROM (
        SELECT customer_id FROM customer_metrics
        WHERE customer_id > :lo AND customer_id <= :hi
        ORDER BY customer_id
        FOR UPDATE
    ) AS locked
    """
).bindparams(bindparam("lo", type_=Uuid()), bindparam("hi", type_=Uuid()))


# For the transaction it runs in: room to sort a chunk in memory (the default 4MB spilled to
# disk), and no JIT compilation (tens of ms per statement, more than it saves on a chunk).
_BULK_SETTINGS = text("SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true)")


async def tune_for_bulk(conn: Connection) -> None:
    """Settings for one chunk's transaction (``_BULK_SETTINGS``)."""
    await conn.execute(_BULK_SETTINGS)


async def lock_chunk(conn: Connection, lo: uuid.UUID, hi: uuid.UUID) -> int:
    """Lock the chunk's metrics rows in customer order (the sort runs below the row locks, so
    they are taken in that order); returns how many."""
    return int((await conn.execute(_LOCK_CHUNK, {"lo": lo, "hi": hi})).scalar_one())


# ---------------------------------------------------------------------------- order figures

ORDER_FIGURES = (
    "order_count",
    "gross_revenue",
    "refunded_amount",
    "net_revenue",
    "refund_count",
    "first_order_at",
    "last_order_at",
)
_FIGURES = ", ".join(ORDER_FIGURES)
_STORED = ", ".join(f"m.{name}" for name in ORDER_FIGURES)
_FRESH = ", ".join(f"s.{name}" for name in ORDER_FIGURES)

_WRITE_ORDER_FIGURES = text(
    f"""
    WITH counted AS (
        SELECT customer_id, count(*)::int AS order_count, sum(total) AS gross_revenue,
               min(occurred_at) AS first_order_at, max(occurred_at) AS last_order_at
        FROM orders
        WHERE customer_id > :lo AND customer_id <= :hi AND status <> 'cancelled'
        GROUP BY customer_id
    ),
    refunded AS (
        SELECT r.customer_id, count(*)::int AS refund_count, sum(r.amount) AS refunded_amount
        FROM order_refunds AS r
        JOIN orders AS o ON o.customer_id = r.customer_id AND o.id = r.order_id
        WHERE r.customer_id > :lo AND r.customer_id <= :hi AND o.status <> 'cancelled'
        GROUP BY r.customer_id
    ),
    fresh AS (
        SELECT c.customer_id, c.order_count, c.gross_revenue,
               coalesce(r.refunded_amount, 0) AS refunded_amount,
               c.gross_revenue - coalesce(r.refunded_amount, 0) AS net_revenue,
               coalesce(r.refund_count, 0) AS refund_count, c.first_order_at, c.last_order_at
        FROM counted AS c LEFT JOIN refunded AS r USING (customer_id)
    ),
    -- The stored rows as this statement's snapshot has them (the same snapshot as the orders).
    seen AS (
        SELECT m.customer_id, m.revision,
               coalesce(f.order_count, 0) AS order_count,
               coalesce(f.gross_revenue, 0) AS gross_revenue,
               coalesce(f.refunded_amount, 0) AS refunded_amount,
               coalesce(f.net_revenue, 0) AS net_revenue,
               coalesce(f.refund_count, 0) AS refund_count,
               f.first_order_at, f.last_order_at,
               ({_STORED}) IS DISTINCT FROM (
                   coalesce(f.order_count, 0), coalesce(f.gross_revenue, 0),
                   coalesce(f.refunded_amount, 0), coalesce(f.net_revenue, 0),
                   coalesce(f.refund_count, 0), f.first_order_at, f.last_order_at
               ) AS differs
        FROM customer_metrics AS m LEFT JOIN fresh AS f USING (customer_id)
        WHERE m.customer_id > :lo AND m.customer_id <= :hi
    ),
    corrected AS (
        UPDATE customer_metrics AS m
        SET ({_FIGURES}, updated_at) = ({_FRESH}, :now)
        FROM seen AS s
        WHERE m.customer_id = s.customer_id AND s.differs AND m.revision = s.revision
          AND m.customer_id > :lo AND m.customer_id <= :hi
        RETURNING m.customer_id
    ),
    added AS (
        INSERT INTO customer_metrics (customer_id, {_FIGURES}, updated_at)
        SELECT f.customer_id, {", ".join(f"f.{name}" for name in ORDER_FIGURES)}, :now
        FROM fresh AS f
        WHERE NOT EXISTS (SELECT 1 FROM seen AS s WHERE s.customer_id = f.customer_id)
        ORDER BY f.customer_id
        ON CONFLICT (customer_id) DO NOTHING
        RETURNING customer_id
    )
    SELECT (SELECT count(*) FROM fresh) AS buyers,
           (SELECT count(*) FROM seen WHERE differs) AS differing,
           (SELECT count(*) FROM corrected) AS corrected,
           (SELECT count(*) FROM added) AS added
    """
).bindparams(
    bindparam("lo", type_=Uuid()),
    bindparam("hi", type_=Uuid()),
    bindparam("now", type_=DateTime(timezone=True)),
)


@dataclass(frozen=True, slots=True)
class OrderFigureWrites:
    buyers: int  # customers of the chunk with orders
    differing: int  # stored rows whose figures differed from the orders
    corrected: int  # of those, rewritten (the others moved on meanwhile: left to their update)
    added: int  # rows created for customers with orders but none


async def gather_statistics(conn: Connection) -> None:
    """Refresh the planner's statistics of the tables a refresh grows (see
    ``refresh.ANALYZE_AFTER_ROWS``)."""
    await conn.execute(text("ANALYZE customer_metrics, events, customer_event_sequences"))


async def write_order_figures(
    conn: Connection, lo: uuid.UUID, hi: uuid.UUID, now: datetime
) -> OrderFigureWrites:
    row = (await conn.execute(_WRITE_ORDER_FIGURES, {"lo": lo, "hi": hi, "now": now})).one()
    return OrderFigureWrites(**row._mapping)


# ------------------------------------------------------------------------ as-of aggregates


def _as_of_orders(chunk: bool) -> str:
    """Per customer, the orders before the cutoff (not cancelled), each net of the refunds that
    happened before the cutoff: the as-of figures every refresh column derives from. ``chunk``:
    only the customers in (:lo, :hi]."""
    orders_in = "AND o.customer_id > :lo AND o.customer_id <= :hi" if chunk else ""
    refunds_in = "AND customer_id > :lo AND customer_id <= :hi" if chunk else ""
    return f"""
    refunded_before AS (
        SELECT customer_id, order_id, sum(amount) AS amount
        FROM order_refunds
        WHERE occurred_at < :cutoff {refunds_in}
        GROUP BY customer_id, order_id
    ),
    as_of_orders AS (
        SELECT o.customer_id,
               min(o.occurred_at) AS first_at,
               max(o.occurred_at) AS last_at,
               (array_agg(o.occurred_at ORDER BY o.occurred_at DESC))[2] AS previous_at,
               sum(o.total - coalesce(r.amount, 0)) AS net_revenue,
               count(*) FILTER (WHERE o.occurred_at >= :window_start)::int AS window_orders,
               coalesce(sum(o.total - coalesce(r.amount, 0))
                        FILTER (WHERE o.occurred_at >= :window_start), 0) AS window_revenue
        FROM orders AS o
        LEFT JOIN refunded_before AS r ON r.customer_id = o.customer_id AND r.order_id = o.id
        WHERE o.status <> 'cancelled' AND o.occurred_at < :cutoff {orders_in}
        GROUP BY o.customer_id
    )"""


def _days_since(column: str) -> str:
    return f"(CAST(:as_of AS date) - ({column} AT TIME ZONE 'UTC')::date)"


# R ranks days since the last order descending (fewer days: higher score): its ranked value is
# the negated recency, so every dimension ranks ascending.
_RANKED = {
    "r": f"-{_days_since('last_at')}",
    "f": "window_orders",
    "m": "window_revenue",
}


def _boundary_sql(name: str) -> str:
    return f"""
    ranked_{name} AS (
        SELECT value, row_number() OVER (ORDER BY value) AS position
        FROM (SELECT {_RANKED[name]} AS value FROM as_of_orders WHERE window_orders > 0) AS v
    ),
    bounds_{name} AS (
        SELECT array_agg(r.value ORDER BY marks.k) AS bounds
        FROM marks JOIN ranked_{name} AS r USING (position)
    )"""


# 1 + floor(5 * percent_rank) reaches k + 1 exactly when at least k (n - 1) / 5 of the n ranked
# values are below the customer's, that is when its value is above the one at sorted position
# ceil(k (n - 1) / 5): the boundaries of scores 2..5 (none for a lone customer, who scores 1).
# Integer arithmetic, so no float rounding decides a score at a quintile edge.
_RANK_BOUNDARIES = text(
    f"""
    WITH {_as_of_orders(chunk=False)},
    ranked AS (SELECT count(*) AS n FROM as_of_orders WHERE window_orders > 0),
    marks AS (
        SELECT k, (k * (n - 1) + 4) / 5 AS position
        FROM ranked, generate_series(1, 4) AS k WHERE n >= 2
    ),
    {_boundary_sql("r")},
    {_boundary_sql("f")},
    {_boundary_sql("m")},
    positive AS (
        SELECT net_revenue AS value, sum(net_revenue) AS revenue
        FROM as_of_orders WHERE net_revenue > 0 GROUP BY net_revenue
    ),
    above AS (
        SELECT value,
               coalesce(sum(revenue) OVER (ORDER BY value DESC
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                        0) AS revenue_above
        FROM positive
    ),
    total AS (SELECT coalesce(sum(revenue), 0) AS revenue FROM positive)
    SELECT (SELECT n FROM ranked) AS ranked,
           (SELECT bounds FROM bounds_r) AS r,
           (SELECT bounds FROM bounds_f) AS f,
           (SELECT bounds FROM bounds_m) AS m,
           (SELECT revenue FROM total) AS total_revenue,
           (SELECT min(value) FROM above, total
            WHERE revenue_above < :share_a * total.revenue) AS tier_a,
           (SELECT min(value) FROM above, total
            WHERE revenue_above < :share_ab * total.revenue) AS tier_b
    """
)


@dataclass(frozen=True, slots=True)
class Boundaries:
    """Where the scores and tiers change, over every customer as of the cutoff. A score is 1 +
    the number of its boundaries the customer's ranked value is above (no boundaries: 1); a
    customer with positive net revenue at least ``tier_a`` is A, at least ``tier_b`` B."""

    ranked: int
    r: list[int]
    f: list[int]
    m: list[Decimal]
    tier_a: Decimal | None
    tier_b: Decimal | None
    total_revenue: Decimal


def _cutoff_params(cut: Cutoffs) -> dict[str, Any]:
    return {"as_of": cut.as_of, "cutoff": cut.cutoff, "window_start": cut.window_start}


_CUTOFF_BINDS = (
    bindparam("as_of", type_=Date()),
    bindparam("cutoff", type_=DateTime(timezone=True)),
    bindparam("window_start", type_=DateTime(timezone=True)),
)


async def rank_boundaries(
    conn: Connection, cut: Cutoffs, *, share_a: Decimal, share_ab: Decimal
) -> Boundaries:
    """The boundaries over every customer as of the cutoff, in one statement (one snapshot)."""
    row = (
        await conn.execute(
            _RANK_BOUNDARIES.bindparams(
                *_CUTOFF_BINDS,
                bindparam("share_a", type_=Numeric()),
                bindparam("share_ab", type_=Numeric()),
            ),
            {**_cutoff_params(cut), "share_a": share_a, "share_ab": share_ab},
        )
    ).one()
    values = row._mapping
    return Boundaries(
        ranked=values["ranked"],
        r=list(values["r"] or []),
        f=list(values["f"] or []),
        m=list(values["m"] or []),
        tier_a=values["tier_a"],
        tier_b=values["tier_b"],
        total_revenue=values["total_revenue"],
    )


# ------------------------------------------------------------------------- refresh figures


def _score(name: str, array_type: str) -> str:
    return f"""(1 + (SELECT count(*) FROM unnest(CAST(:{name}_bounds AS {array_type})) AS b(v)
                  WHERE {_RANKED[name]} > b.v))::smallint"""


def _segment_case() -> str:
    cells = "\n".join(
        f"            WHEN {r}{f} THEN '{segment.value}'"
        for (r, f), segment in sorted(SEGMENT_GRID.items())
    )
    # The cell as a two-digit number: R tens, F units.
    return f"CASE s.rfm_recency * 10 + s.rfm_frequency\n{cells}\n        END"


_STAGE = f"""
        CASE
            WHEN {_days_since("last_at")} > :churned_days THEN '{LifecycleStage.CHURNED.value}'
            WHEN {_days_since("last_at")} > :at_risk_days THEN '{LifecycleStage.AT_RISK.value}'
            WHEN previous_at IS NOT NULL
                 AND (last_at AT TIME ZONE 'UTC')::date - (previous_at AT TIME ZONE 'UTC')::date
                     >= :churned_days THEN '{LifecycleStage.REACTIVATED.value}'
            WHEN {_days_since("first_at")} <= :new_days THEN '{LifecycleStage.NEW.value}'
            ELSE '{LifecycleStage.ACTIVE.value}'
        END"""

_WRITE_REFRESH_FIGURES = text(
    f"""
    WITH {_as_of_orders(chunk=True)},
    scored AS (
        SELECT customer_id, {_days_since("last_at")} AS recency_days,
               CASE WHEN window_orders > 0 THEN {_score("r", "integer[]")} END AS rfm_recency,
               CASE WHEN window_orders > 0 THEN {_score("f", "integer[]")} END AS rfm_frequency,
               CASE WHEN window_orders > 0 THEN {_score("m", "numeric[]")} END AS rfm_monetary,
               CASE
                   WHEN net_revenue > 0 AND net_revenue >= :tier_a THEN 'A'
                   WHEN net_revenue > 0 AND net_revenue >= :tier_b THEN 'B'
                   ELSE 'C'
               END AS value_tier,
               {_STAGE} AS lifecycle_stage
        FROM as_of_orders
    ),
    target AS (
        SELECT m.customer_id, m.lifecycle_stage AS previous_stage,
               s.recency_days, s.rfm_recency, s.rfm_frequency, s.rfm_monetary,
               {_segment_case()} AS rfm_segment,
               s.value_tier,
               coalesce(s.lifecycle_stage, '{LifecycleStage.PROSPECT.value}') AS lifecycle_stage
        FROM customer_metrics AS m LEFT JOIN scored AS s USING (customer_id)
        WHERE m.customer_id > :lo AND m.customer_id <= :hi
    ),
    written AS (
        UPDATE customer_metrics AS m
        SET as_of = :as_of, recency_days = t.recency_days, rfm_recency = t.rfm_recency,
            rfm_frequency = t.rfm_frequency, rfm_monetary = t.rfm_monetary,
            rfm_segment = t.rfm_segment, value_tier = t.value_tier,
            lifecycle_stage = t.lifecycle_stage,
            lifecycle_changed_at = CASE WHEN t.lifecycle_stage <> t.previous_stage THEN :now
                                        ELSE m.lifecycle_changed_at END,
            computed_at = :now
        FROM target AS t
        WHERE m.customer_id = t.customer_id AND m.customer_id > :lo AND m.customer_id <= :hi
        RETURNING m.customer_id, t.previous_stage, t.lifecycle_stage
    ),
    changed AS (
        SELECT customer_id, previous_stage, lifecycle_stage FROM written
        WHERE lifecycle_stage <> previous_stage
    ),
    -- Each changed customer's next event number, its sequence row taken in customer order
    -- (as app.events.repository.append_customer_events takes them).
    taken AS (
        INSERT INTO customer_event_sequences AS s (customer_id, last_sequence)
        SELECT customer_id, 1 FROM changed ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET last_sequence = s.last_sequence + 1
        RETURNING customer_id, last_sequence
    ),
    appended AS (
        INSERT INTO events (id, type, customer_id, sequence, occurred_at, data)
        SELECT gen_random_uuid(), :event_type, c.customer_id, t.last_sequence, :now,
               jsonb_build_object('customer_id', c.customer_id,
                                  'previous_stage', c.previous_stage,
                                  'stage', c.lifecycle_stage,
                                  'as_of', CAST(:as_of AS date))
        FROM changed AS c JOIN taken AS t USING (customer_id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM written) AS written,
           (SELECT count(*) FROM appended) AS lifecycle_changes
    """
).bindparams(
    *_CUTOFF_BINDS,
    bindparam("lo", type_=Uuid()),
    bindparam("hi", type_=Uuid()),
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("r_bounds", type_=ARRAY(Integer())),
    bindparam("f_bounds", type_=ARRAY(Integer())),
    bindparam("m_bounds", type_=ARRAY(Numeric())),
    bindparam("tier_a", type_=Numeric()),
    bindparam("tier_b", type_=Numeric()),
    bindparam("new_days", type_=Integer()),
    bindparam("at_risk_days", type_=Integer()),
    bindparam("churned_days", type_=Integer()),
    bindparam("event_type", type_=String()),
)


@dataclass(frozen=True, slots=True)
class LifecycleDays:
    new: int
    at_risk: int
    churned: int


@dataclass(frozen=True, slots=True)
class RefreshFigureWrites:
    written: int
    lifecycle_changes: int


async def write_refresh_figures(
    conn: Connection,
    lo: uuid.UUID,
    hi: uuid.UUID,
    *,
    cut: Cutoffs,
    bounds: Boundaries,
    days: LifecycleDays,
    now: datetime,
) -> RefreshFigureWrites:
    row = (
        await conn.execute(
            _WRITE_REFRESH_FIGURES,
            {
                **_cutoff_params(cut),
                "lo": lo,
                "hi": hi,
                "now": now,
                "r_bounds": bounds.r,
                "f_bounds": bounds.f,
                "m_bounds": bounds.m,
                "tier_a": bounds.tier_a,
                "tier_b": bounds.tier_b,
                "new_days": days.new,
                "at_risk_days": days.at_risk,
                "churned_days": days.churned,
                "event_type": LIFECYCLE_CHANGED,
            },
        )
    ).one()
    return RefreshFigureWrites(**row._mapping)


# ------------------------------------------------------------------------------- refreshes

_REFRESH_COLUMNS = [refreshes.c[name] for name in RefreshOut.model_fields]
_ACTIVE = refreshes.c.status.in_([RefreshStatus.QUEUED.value, RefreshStatus.RUNNING.value])


def refresh_from_row(row: Any) -> RefreshOut:
    return RefreshOut.from_stored(row._mapping)


async def insert_refresh(conn: Connection, values: dict[str, Any]) -> RefreshOut | None:
    """A new queued refresh; None (nothing written) while another is queued or running (the
    unique partial index; a concurrent insert waits for the other transaction to end)."""
    statement = (
        insert(refreshes)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=[text("(true)")],
            index_where=text("status IN ('queued', 'running')"),
        )
        .returning(*_REFRESH_COLUMNS)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else refresh_from_row(row)


async def active_refresh(conn: Connection) -> RefreshOut | None:
    row = (await conn.execute(select(*_REFRESH_COLUMNS).where(_ACTIVE))).first()
    return None if row is None else refresh_from_row(row)


async def get_refresh(conn: Connection, refresh_id: uuid.UUID) -> RefreshOut | None:
    row = (
        await conn.execute(select(*_REFRESH_COLUMNS).where(refreshes.c.id == refresh_id))
    ).first()
    return None if row is None else refresh_from_row(row)


def list_query() -> Select[Any]:
    """Newest first, ordered by a unique key (for ``fetch_page``)."""
    return select(*_REFRESH_COLUMNS).order_by(
        refreshes.c.requested_at.desc(), refreshes.c.id.desc()
    )


async def start_refresh(
    conn: Connection, refresh_id: uuid.UUID, now: datetime
) -> RefreshOut | None:
    """Queued -> running; None when it is not queued (failed meanwhile, or started elsewhere)."""
    row = (
        await conn.execute(
            update(refreshes)
            .where(refreshes.c.id == refresh_id, refreshes.c.status == RefreshStatus.QUEUED.value)
            .values(status=RefreshStatus.RUNNING.value, started_at=now)
            .returning(*_REFRESH_COLUMNS)
        )
    ).first()
    return None if row is None else refresh_from_row(row)


_RUNNING = refreshes.c.status == RefreshStatus.RUNNING.value


async def begin_step(conn: Connection, refresh_id: uuid.UUID, step: str) -> bool:
    """Record the step now running; False when the refresh is no longer running."""
    result = await conn.execute(
        update(refreshes)
        .where(refreshes.c.id == refresh_id, _RUNNING)
        .values(step=step)
        .returning(refreshes.c.id)
    )
    return result.first() is not None


_END_STEP = text(
    """
    UPDATE analytics_refreshes
    SET steps_done = steps_done + 1, figures = figures || jsonb_build_object(:step, :figures)
    WHERE id = :id AND status = 'running'
    RETURNING id
    """
).bindparams(
    bindparam("id", type_=Uuid()),
    bindparam("step", type_=String()),
    bindparam("figures", type_=JSONB()),
)


async def end_step(
    conn: Connection, refresh_id: uuid.UUID, step: str, figures: dict[str, Any]
) -> bool:
    result = await conn.execute(_END_STEP, {"id": refresh_id, "step": step, "figures": figures})
    return result.first() is not None


async def finish_refresh(
    conn: Connection,
    refresh_id: uuid.UUID,
    *,
    status: RefreshStatus,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Running (or queued) -> ``status``; False when it had already ended."""
    result = await conn.execute(
        update(refreshes)
        .where(refreshes.c.id == refresh_id, _ACTIVE)
        .values(status=status.value, finished_at=now, error=error)
        .returning(refreshes.c.id)
    )
    return result.first() is not None


# The refresh lock: held (session-level) by the process running a refresh, for as long as it
# runs. Any bigint; "kehu_rfr" in ASCII.
REFRESH_LOCK_KEY = 0x6B6568755F726672

_TAKE_REFRESH_LOCK = text("SELECT pg_advisory_lock(:key)").bindparams(key=REFRESH_LOCK_KEY)
_RELEASE_REFRESH_LOCK = text("SELECT pg_advisory_unlock(:key)").bindparams(key=REFRESH_LOCK_KEY)


async def take_refresh_lock(conn: Connection) -> None:
    await conn.execute(_TAKE_REFRESH_LOCK)


async def release_refresh_lock(conn: Connection) -> None:
    await conn.execute(_RELEASE_REFRESH_LOCK)


# A running refresh whose lock nobody holds lost its process (the lock goes with the session);
# a queued one that no worker started within the limit lost its job. The lock test takes the
# lock only for the caller's transaction.
_FAIL_ORPHANS = text(
    """
    UPDATE analytics_refreshes
    SET status = 'failed', finished_at = :now,
        error = CASE WHEN status = 'running'
                     THEN 'abandoned: the process running it stopped'
                     ELSE 'abandoned: no worker started it in time' END
    WHERE (status = 'running' AND pg_try_advisory_xact_lock(:key))
       OR (status = 'queued' AND requested_at < :queued_before)
    RETURNING id
    """
).bindparams(
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("queued_before", type_=DateTime(timezone=True)),
    key=REFRESH_LOCK_KEY,
)


async def fail_orphans(conn: Connection, *, now: datetime, queued_before: datetime) -> int:
    result = await conn.execute(_FAIL_ORPHANS, {"now": now, "queued_before": queued_before})
    return len(result.all())


# --------------------------------------------------------------------------------- reading

_METRICS_COLUMNS = [c for c in metrics.c if c.name not in ("customer_id", "revision")]
_LIVE_WITH_METRICS = text(
    f"""
    SELECT c.id AS customer_id, m.customer_id IS NOT NULL AS has_row,
           {", ".join(f"m.{c.name}" for c in _METRICS_COLUMNS)}
    FROM customers AS c LEFT JOIN customer_metrics AS m ON m.customer_id = c.id
    WHERE c.id = ANY(:ids) AND c.deleted_at IS NULL
    """
).bindparams(bindparam("ids", type_=ARRAY(Uuid())))

_MONEY_FIELDS = (
    "gross_revenue",
    "refunded_amount",
    "net_revenue",
    "average_order_value",
    "expected_order_value",
    "clv_12m",
)


def _metrics_from_row(values: Any, currency: str) -> CustomerMetricsOut:
    data = {name: values[name] for name in CustomerMetricsOut.model_fields}
    if not values["has_row"]:
        data.update(order_count=0, refund_count=0, lifecycle_stage=LifecycleStage.PROSPECT.value)
        for name in ("gross_revenue", "refunded_amount", "net_revenue"):
            data[name] = Decimal(0)
    for name in _MONEY_FIELDS:
        if data[name] is not None:
            data[name] = Money.of(data[name], currency)
    return CustomerMetricsOut.from_stored(data)


async def metrics_of(
    conn: Connection, customer_ids: Sequence[uuid.UUID], currency: str
) -> dict[uuid.UUID, CustomerMetricsOut]:
    """The metrics of each live customer among ``customer_ids`` (a customer without a row as a
    prospect with zero figures); unknown or deleted customers are left out."""
    if not customer_ids:
        return {}
    rows = await conn.execute(_LIVE_WITH_METRICS, {"ids": list(customer_ids)})
    found = [_metrics_from_row(row._mapping, currency) for row in rows]
    return {m.customer_id: m for m in found}


CHURN_BUCKETS = 5


def _overview_sql() -> str:
    stages = [s.value for s in LifecycleStage]
    segments = sorted({s.value for s in SEGMENT_GRID.values()})
    counts = [
        *(
            f"count(*) FILTER (WHERE coalesce(m.lifecycle_stage, 'prospect') = '{s}') AS stage_{s}"
            for s in stages
        ),
        *(f"count(*) FILTER (WHERE m.value_tier = '{t}') AS tier_{t.lower()}" for t in "ABC"),
        "count(*) FILTER (WHERE m.value_tier IS NULL) AS tier_none",
        *(f"count(*) FILTER (WHERE m.rfm_segment = '{s}') AS segment_{s}" for s in segments),
        "count(*) FILTER (WHERE m.rfm_segment IS NULL) AS segment_none",
        *(
            f"count(*) FILTER (WHERE m.churn_risk >= {i / CHURN_BUCKETS} "
            + (f"AND m.churn_risk < {(i + 1) / CHURN_BUCKETS}" if i < CHURN_BUCKETS - 1 else "")
            + f") AS churn_{i}"
            for i in range(CHURN_BUCKETS)
        ),
    ]
    return f"""
    SELECT count(*) AS customers,
           {", ".join(counts)},
           coalesce(sum(m.gross_revenue), 0) AS gross,
           coalesce(sum(m.refunded_amount), 0) AS refunds,
           coalesce(sum(m.net_revenue), 0) AS net,
           count(*) FILTER (WHERE m.order_count >= 1) AS customers_with_orders,
           count(*) FILTER (WHERE m.order_count >= 2) AS repeat_customers,
           round(avg(m.clv_12m), 2) AS average_clv,
           (SELECT as_of FROM latest) AS as_of,
           (SELECT finished_at FROM latest) AS refreshed_at
    FROM customers AS c
    LEFT JOIN customer_metrics AS m ON m.customer_id = c.id
    WHERE c.deleted_at IS NULL
    """


_OVERVIEW = text(
    """
    WITH latest AS (
        SELECT as_of, finished_at FROM analytics_refreshes
        WHERE status = 'succeeded' ORDER BY finished_at DESC LIMIT 1
    )"""
    + _overview_sql()
)


async def overview(conn: Connection) -> dict[str, Any]:
    """Every figure of the overview, in one statement (one row)."""
    return dict((await conn.execute(_OVERVIEW)).one()._mapping)
