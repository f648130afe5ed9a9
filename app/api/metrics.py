"""What ``/metrics`` serves: the process's metrics (app/core/metrics.py), or with several workers the
sum of every worker's, plus figures sampled when the scrape comes.

- Pools: each pool object is read at scrape time (size, checked out, waiting). With several
  workers a scrape reaches one of them, so each worker also samples its own pools every
  ``POOL_SAMPLE_SECONDS`` into the shared files, and the scrape sums them.
- Job queue depth and event-sequencer lag: one small query each on the database, run at most
  every ``DATABASE_SAMPLE_SECONDS`` under a statement timeout, so a scrape never waits on a slow
  database for long. Both are figures of the whole database, the same whichever worker answers.

Multiprocess mode follows prometheus_client's documentation: a fresh registry per scrape with a
``MultiProcessCollector``; the per-process collectors (CPU, memory, GC) are not exported then, as
the library cannot combine them.
"""

import asyncio
import contextlib
import glob
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core import metrics
from app.db import engine as db
from app.worker import queue

log = structlog.get_logger("kehu.metrics")

POOL_SAMPLE_SECONDS = 1.0
DATABASE_SAMPLE_SECONDS = 5.0
DATABASE_STATEMENT_TIMEOUT_MS = 1000
# Paths whose requests are not counted in flight: a scrape would always see itself.
UNCOUNTED_PATHS = frozenset({"/metrics", "/healthz"})


class InFlightMiddleware:
    """Counts the HTTP requests being served (``kehu_http_requests_in_flight``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        metrics.REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            metrics.REQUESTS_IN_FLIGHT.dec()


def sample_pools() -> None:
    """This process's pools into the pool gauges: the write pool, then the read pool (when it is
    a pool of its own)."""
    for label, engine in zip(("write", "read"), db.engines(), strict=False):
        pool: Any = engine.sync_engine.pool
        metrics.DB_POOL_SIZE.labels(label).set(pool.size())
        metrics.DB_POOL_CHECKED_OUT.labels(label).set(pool.checkedout())
        waiting = getattr(pool, "waiting", None)
        metrics.DB_POOL_WAITING.labels(label).set(waiting() if waiting is not None else 0)


# The oldest event still without a feed position (a partial index holds exactly those rows). Here,
# not in app/events: the shared layers name no domain package (tests/test_layers.py).
_SEQUENCER_LAG = text(
    "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(occurred_at)), 0)::float8"
    " FROM events WHERE position IS NULL"
)


class DatabaseSnapshot(Collector):
    """Job queue depth and event-sequencer lag, as last read from the database."""

    def __init__(self) -> None:
        self.queue_depth: dict[tuple[str, str], int] = {}
        self.sequencer_lag: float | None = None
        self.read_at: float | None = None

    def forget(self) -> None:
        """The next ``refresh`` reads the database whatever the age of the snapshot."""
        self.read_at = None

    async def refresh(self) -> None:
        now = time.monotonic()
        if self.read_at is not None and now - self.read_at < DATABASE_SAMPLE_SECONDS:
            return
        # Marked read before the query (nothing awaited in between), so concurrent scrapes run it
        # once; failures too are kept for the interval: a database in trouble gets no more queries.
        self.read_at = now
        try:
            async with asyncio.timeout(DATABASE_STATEMENT_TIMEOUT_MS / 1000 * 2):
                await self._read()
        except Exception as exc:  # a scrape still answers, with the last values read
            log.warning("metrics_database_sample_failed", error=type(exc).__name__)

    async def _read(self) -> None:
        # A transaction, for SET LOCAL: the read pool runs in autocommit.
        async with db.unit_of_work() as conn:
            await conn.execute(
                text(f"SET LOCAL statement_timeout = {DATABASE_STATEMENT_TIMEOUT_MS}")
            )
            depth = await queue.depth(conn)
            lag = float((await conn.execute(_SEQUENCER_LAG)).scalar_one())
        self.queue_depth = depth
        self.sequencer_lag = max(0.0, lag)

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            metrics.JOB_QUEUE_DEPTH,
            "Jobs in the queue table by entrypoint and status (queued, picked), sampled at most "
            f"every {DATABASE_SAMPLE_SECONDS:g} s.",
            labels=["entrypoint", "status"],
        )
        for (name, status), count in sorted(self.queue_depth.items()):
            depth.add_metric([name, status], count)
        yield depth
        lag = GaugeMetricFamily(
            metrics.EVENT_SEQUENCER_LAG,
            "Seconds since the oldest event still waiting for a feed position occurred; 0 when "
            f"none waits. Sampled at most every {DATABASE_SAMPLE_SECONDS:g} s.",
        )
        if self.sequencer_lag is not None:
            lag.add_metric([], self.sequencer_lag)
        yield lag


database_snapshot = DatabaseSnapshot()
REGISTRY.register(database_snapshot)


async def render() -> tuple[bytes, str]:
    """The scrape: its body and content type."""
    await database_snapshot.refresh()
    with contextlib.suppress(Exception):  # no database configured: no pool figures
        sample_pools()
    if metrics.MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    forget_dead_processes(metrics.MULTIPROCESS_DIR)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics.MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    registry.register(database_snapshot)
    return generate_latest(registry), CONTENT_TYPE_LATEST


_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db$")


def forget_dead_processes(directory: str) -> None:
    """Drop the live gauges of worker processes that are gone (a crash skips their own cleanup),
    so a restarted worker's pool is not counted twice. Their counters stay: they still count."""
    pids = {
        int(found.group(1))
        for path in glob.glob(os.path.join(directory, "gauge_live*_*.db"))
        if (found := _LIVE_GAUGE_FILE.search(path))
    }
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's: not ours to judge


async def _sample_pools_forever() -> None:
    while True:
        with contextlib.suppress(Exception):
            sample_pools()
        await asyncio.sleep(POOL_SAMPLE_SECONDS)


def start_process_sampling() -> "asyncio.Task[None] | None":
    """With several workers, this worker's pools sampled in the background (see the module
    docstring); None (nothing to do) in a single process, where scrapes read the pools."""
    if metrics.MULTIPROCESS_DIR is None:
        return None
    return asyncio.create_task(_sample_pools_forever())


async def stop_process_sampling(task: "asyncio.Task[None] | None") -> None:
    """Stop the sampling and, with several workers, withdraw this process's live gauges."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if metrics.MULTIPROCESS_DIR is not None:
        mark_process_dead(os.getpid(), metrics.MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
