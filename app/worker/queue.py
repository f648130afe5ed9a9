"""Enqueue jobs inside the caller's transaction, so a job exists only if the work that asked for it commits.

pgqueuer's rows are written through the caller's own connection; its NOTIFY is transactional too, so
workers hear of the job at commit and never before.
"""

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from pgqueuer import AsyncpgDriver, Queries
from sqlalchemy import text

from app.db import Connection, unit_of_work

# A job: called with its payload; opens its own unit of work.
JobHandler = Callable[[dict[str, Any]], Awaitable[None]]

log = structlog.get_logger("kehu.worker")


def purge_job(purge: Callable[[Connection], Awaitable[int]], log_event: str) -> JobHandler:
    """A retention job: ``purge`` deletes what has expired, in the job's own unit of work, and
    returns how many rows went; the job logs that count as ``log_event``."""

    async def job(_: dict[str, Any]) -> None:
        async with unit_of_work() as conn:
            removed = await purge(conn)
        log.info(log_event, removed=removed)

    return job


async def enqueue(
    connection: Connection,
    entrypoint: str,
    payload: dict[str, Any] | None = None,
    *,
    delay: timedelta | None = None,
    dedupe_key: str | None = None,
) -> int:
    # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first statement: make sure the
    # transaction is open, or pgqueuer's INSERT on the raw connection would commit on its own.
    await connection.execute(text("SELECT 1"))
    raw = await connection.get_raw_connection()
    queries = Queries(AsyncpgDriver(raw.driver_connection))
    body = json.dumps(payload or {}, separators=(",", ":"), default=str).encode()
    ids = await queries.enqueue(entrypoint, body, execute_after=delay, dedupe_key=dedupe_key)
    return int(ids[0])


_DEPTH = text("SELECT entrypoint, status::text, count(*) FROM pgqueuer GROUP BY entrypoint, status")


async def depth(conn: Connection) -> dict[tuple[str, str], int]:
    """Jobs in the queue by (entrypoint, status): what the metrics call the queue depth."""
    rows = (await conn.execute(_DEPTH)).all()
    return {(str(name), str(status)): int(count) for name, status, count in rows}
