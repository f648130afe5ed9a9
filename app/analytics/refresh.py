"""The full analytics refresh: the orchestrator (``run``) and its first step (``refresh``).

``run`` takes a queued refresh (``analytics_refreshes``), marks it running and runs the steps in
order, recording each step's start and figures in a small transaction of its own (so
``GET /v1/analytics/refreshes/{id}`` shows progress), then marks it succeeded, or failed with the
error of the step that raised. While it runs, its process holds the refresh lock
(``repository.REFRESH_LOCK_KEY``, a session advisory lock): if the process dies, the lock goes with
its connection and the next request or schedule fails the orphan (``service.fail_orphans``).

``refresh`` is the metrics step: order figures, recency, RFM, value tier and lifecycle, written in
chunks of customers (``repository`` explains the statements).
"""

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import structlog

from app.analytics import repository
from app.analytics.enums import RefreshStatus
from app.analytics.predictive import step as predictive_step
from app.analytics.rules import cutoffs, tier_shares
from app.core import clock
from app.core.config import get_settings
from app.db import read_connection, unit_of_work
from app.recommendations import stats as recommendation_stats

log = structlog.get_logger("kehu.analytics")

# Customers per chunk transaction.
CHUNK_SIZE = 20_000
# Rows added to customer_metrics and events since their statistics were last gathered, past which
# the step gathers them again. A first refresh adds a row and an event per buyer: planned on the
# statistics of the tables as they were (empty), later chunks and the event sequencer's passes would
# pick nested loops over sequential scans (a sequencer pass took minutes at 800,000 new events).
ANALYZE_AFTER_ROWS = 50_000
# How long an error message is kept on the refresh.
MAX_ERROR = 2_000

Step = Callable[..., Awaitable[dict[str, Any]]]


async def refresh(*, as_of: date, refresh_id: uuid.UUID | None) -> dict[str, Any]:
    """The metrics step: every customer's order figures (over all orders) and, as of ``as_of``,
    recency, RFM, value tier and lifecycle stage (with a ``customer.lifecycle_changed`` event per
    change). Returns what it counted."""
    settings = get_settings()
    cut = cutoffs(as_of, settings)
    share_a, share_ab = tier_shares(settings)
    days = repository.LifecycleDays(
        new=settings.lifecycle_new_days,
        at_risk=settings.lifecycle_at_risk_days,
        churned=settings.lifecycle_churned_days,
    )
    async with unit_of_work() as conn:
        await repository.tune_for_bulk(conn)
        bounds = await repository.rank_boundaries(conn, cut, share_a=share_a, share_ab=share_ab)
    totals = {
        "customers": 0,
        "buyers": 0,
        "figures_corrected": 0,
        "figures_skipped": 0,
        "rows_added": 0,
        "rows_written": 0,
        "lifecycle_changes": 0,
        "chunks": 0,
    }
    lo = repository.FIRST_BOUND
    unanalyzed = 0
    while True:
        async with read_connection() as conn:
            hi, customers = await repository.next_bound(conn, lo, CHUNK_SIZE)
        if hi is None:
            break
        totals["customers"] += customers
        now = clock.now()
        async with unit_of_work() as conn:
            await repository.tune_for_bulk(conn)
            await repository.lock_chunk(conn, lo, hi)
            figures = await repository.write_order_figures(conn, lo, hi, now)
            written = await repository.write_refresh_figures(
                conn, lo, hi, cut=cut, bounds=bounds, days=days, now=now
            )
        totals["chunks"] += 1
        totals["buyers"] += figures.buyers
        totals["figures_corrected"] += figures.corrected
        totals["figures_skipped"] += figures.differing - figures.corrected
        totals["rows_added"] += figures.added
        totals["rows_written"] += written.written
        totals["lifecycle_changes"] += written.lifecycle_changes
        unanalyzed += figures.added + written.lifecycle_changes
        if unanalyzed >= ANALYZE_AFTER_ROWS:
            async with unit_of_work() as conn:
                await repository.gather_statistics(conn)
            unanalyzed = 0
        lo = hi
    if unanalyzed >= ANALYZE_AFTER_ROWS // 10:
        async with unit_of_work() as conn:
            await repository.gather_statistics(conn)
    return {**totals, "ranked": bounds.ranked}


STEPS: list[tuple[str, Step]] = [
    ("metrics", refresh),
    ("predictions", predictive_step.refresh),
    ("recommendations", recommendation_stats.refresh),
]


class _Stopped(Exception):
    """The refresh was ended by someone else (failed as an orphan) while it ran."""


async def run(refresh_id: uuid.UUID) -> RefreshStatus | None:
    """Run a queued refresh to its end; returns how it ended (None: it was not queued, so this
    did nothing). Never leaves it running: any error fails it with the step and the error."""
    async with read_connection() as lock:
        # Held for the whole run on this one session; taken before the refresh is marked
        # running, so a running refresh always has a live holder until it ends.
        await repository.take_refresh_lock(lock)
        try:
            return await _run_locked(refresh_id)
        finally:
            await repository.release_refresh_lock(lock)


async def _run_locked(refresh_id: uuid.UUID) -> RefreshStatus | None:
    async with unit_of_work() as conn:
        started = await repository.start_refresh(conn, refresh_id, clock.now())
    if started is None:
        log.warning("analytics_refresh_not_queued", refresh_id=str(refresh_id))
        return None
    step_name = ""
    try:
        for step_name, step in STEPS:
            async with unit_of_work() as conn:
                if not await repository.begin_step(conn, refresh_id, step_name):
                    raise _Stopped()
            began = time.perf_counter()
            figures = await step(as_of=started.as_of, refresh_id=refresh_id)
            figures = {"seconds": round(time.perf_counter() - began, 3), **figures}
            async with unit_of_work() as conn:
                if not await repository.end_step(conn, refresh_id, step_name, figures):
                    raise _Stopped()
            log.info(
                "analytics_refresh_step", refresh_id=str(refresh_id), step=step_name, **figures
            )
    except _Stopped:
        log.warning("analytics_refresh_ended_elsewhere", refresh_id=str(refresh_id))
        return None
    except Exception as exc:
        log.exception("analytics_refresh_failed", refresh_id=str(refresh_id), step=step_name)
        error = f"{step_name}: {type(exc).__name__}: {exc}"[:MAX_ERROR]
        async with unit_of_work() as conn:
            await repository.finish_refresh(
                conn, refresh_id, status=RefreshStatus.FAILED, now=clock.now(), error=error
            )
        return RefreshStatus.FAILED
    async with unit_of_work() as conn:
        await repository.finish_refresh(
            conn, refresh_id, status=RefreshStatus.SUCCEEDED, now=clock.now()
        )
    return RefreshStatus.SUCCEEDED
