"""Customer analytics use cases: asking for a refresh and following it, a customer's metrics, the
overview. The refresh itself runs in a job (``app/analytics/refresh.py``)."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from app.analytics import refresh as orchestrator
from app.analytics import repository
from app.analytics.enums import LifecycleStage, RfmSegment
from app.analytics.schemas import (
    AnalyticsOverview,
    ChurnRiskBucket,
    CustomerMetricsOut,
    LifecycleCounts,
    RefreshCreate,
    RefreshOut,
    RevenueFigures,
    RfmSegmentCounts,
    ValueTierCounts,
)
from app.core import clock
from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import Conflict, NotFound
from app.core.pagination import Page, fetch_page
from app.core.schemas import Money
from app.db import Connection
from app.worker.queue import enqueue

READ_SCOPE = "analytics:read"
REFRESH_SCOPE = "analytics:refresh"
REFRESH_JOB = "analytics.refresh"
SCHEDULE = "schedule"
# A queued refresh no worker started within this long is failed by the next request or schedule
# (its job was lost, or no worker runs); a running one is failed as soon as its process is gone.
QUEUED_LIMIT = timedelta(hours=1)
LIST_SORT = "-requested_at"


def _require_refresh_reader(caller: Caller) -> None:
    """Following a refresh needs either scope: whoever may start one may watch it."""
    if not caller.has(REFRESH_SCOPE):
        caller.require(READ_SCOPE)


async def fail_orphans(conn: Connection) -> int:
    """Fail the refreshes left queued or running by a lost job or a dead process."""
    now = clock.now()
    return await repository.fail_orphans(conn, now=now, queued_before=now - QUEUED_LIMIT)


async def create_refresh(conn: Connection, *, as_of: date, requested_by: str) -> RefreshOut | None:
    """A new queued refresh, in the caller's transaction; None while another is queued or
    running (orphans are failed first, so they never block)."""
    await fail_orphans(conn)
    return await repository.insert_refresh(
        conn,
        {
            "status": "queued",
            "as_of": as_of,
            "requested_by": requested_by,
            "requested_at": clock.now(),
            "steps_total": len(orchestrator.STEPS),
        },
    )


async def request_refresh(conn: Connection, caller: Caller, payload: RefreshCreate) -> RefreshOut:
    """Queue a refresh and its job (``analytics.refresh``) in the caller's transaction; 409
    ``refresh_in_progress`` (with the active refresh's id) while one is queued or running."""
    caller.require(REFRESH_SCOPE)
    as_of = payload.as_of or clock.now().date()
    created = await create_refresh(conn, as_of=as_of, requested_by=caller.name)
    if created is None:
        active = await repository.active_refresh(conn)
        raise Conflict(
            "A refresh is already queued or running; follow it, or ask again when it has ended.",
            code="refresh_in_progress",
            extensions={"refresh_id": str(active.id) if active else None},
        )
    await enqueue(conn, REFRESH_JOB, {"refresh_id": str(created.id)})
    return created


async def get_refresh(conn: Connection, caller: Caller, refresh_id: uuid.UUID) -> RefreshOut:
    _require_refresh_reader(caller)
    found = await repository.get_refresh(conn, refresh_id)
    if found is None:
        raise NotFound(f"No analytics refresh {refresh_id}.", code="refresh_not_found")
    return found


async def find_refresh(
    conn: Connection, caller: Caller, refresh_id: uuid.UUID
) -> RefreshOut | None:
    _require_refresh_reader(caller)
    return await repository.get_refresh(conn, refresh_id)


async def list_refreshes(
    conn: Connection, caller: Caller, *, limit: int, cursor: str | None
) -> Page[RefreshOut]:
    _require_refresh_reader(caller)
    page = await fetch_page(
        conn, repository.list_query(), limit=limit, cursor=cursor, sort=LIST_SORT
    )
    return page.mapped(repository.refresh_from_row)


# ------------------------------------------------------------------------------------- metrics


async def get_metrics(
    conn: Connection, caller: Caller, customer_id: uuid.UUID
) -> CustomerMetricsOut:
    caller.require(READ_SCOPE)
    found = await repository.metrics_of(conn, [customer_id], get_settings().currency)
    if customer_id not in found:
        raise NotFound(f"No customer {customer_id}.", code="customer_not_found")
    return found[customer_id]


async def metrics_of(
    conn: Connection, caller: Caller, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerMetricsOut]:
    caller.require(READ_SCOPE)
    return await repository.metrics_of(conn, customer_ids, get_settings().currency)


# ------------------------------------------------------------------------------------ overview


def _overview(row: Mapping[str, Any], currency: str) -> AnalyticsOverview:
    with_orders = row["customers_with_orders"]
    repeat = row["repeat_customers"]
    average_clv: Decimal | None = row["average_clv"]
    width = 1 / repository.CHURN_BUCKETS
    return AnalyticsOverview(
        as_of=row["as_of"],
        refreshed_at=row["refreshed_at"],
        customers=row["customers"],
        lifecycle_stages=LifecycleCounts(
            **{s.value: row[f"stage_{s.value}"] for s in LifecycleStage}
        ),
        value_tiers=ValueTierCounts(
            a=row["tier_a"], b=row["tier_b"], c=row["tier_c"], none=row["tier_none"]
        ),
        rfm_segments=RfmSegmentCounts(
            **{s.value: row[f"segment_{s.value}"] for s in RfmSegment},
            none=row["segment_none"],
        ),
        revenue=RevenueFigures(
            gross=Money.of(row["gross"], currency),
            refunds=Money.of(row["refunds"], currency),
            net=Money.of(row["net"], currency),
        ),
        customers_with_orders=with_orders,
        repeat_customers=repeat,
        repeat_rate=round(repeat / with_orders, 4) if with_orders else None,
        average_clv=None if average_clv is None else Money.of(average_clv, currency),
        churn_risk=[
            ChurnRiskBucket(
                low=round(i * width, 1), high=round((i + 1) * width, 1), customers=row[f"churn_{i}"]
            )
            for i in range(repository.CHURN_BUCKETS)
        ],
    )


async def overview(conn: Connection, caller: Caller) -> AnalyticsOverview:
    caller.require(READ_SCOPE)
    return _overview(await repository.overview(conn), get_settings().currency)
