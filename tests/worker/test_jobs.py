import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest

from app.db import Connection, unit_of_work
from app.events import service as events
from app.worker import registry
from app.worker.queue import enqueue, purge_job
from app.worker.runner import Worker


@asynccontextmanager
async def running_worker(
    dsn: str, handler: Callable[[dict[str, Any]], Awaitable[None]]
) -> AsyncIterator[Worker]:
    worker = Worker(dsn, jobs={"test.probe": handler}, schedules={}, runners=[])
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=15)


async def _scalar(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_job_runs_once_after_commit(database_url: str) -> None:
    seen: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def handler(payload: dict[str, Any]) -> None:
        seen.append(payload)
        done.set()

    async with running_worker(database_url, handler):
        async with unit_of_work() as session:
            await enqueue(session, "test.probe", {"n": 7})
            await asyncio.sleep(0.5)
            assert seen == []  # not before commit
        await asyncio.wait_for(done.wait(), timeout=20)
        await asyncio.sleep(1)
    assert seen == [{"n": 7}]


async def test_rolled_back_job_never_runs(database_url: str) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(payload: dict[str, Any]) -> None:
        seen.append(payload)

    async with running_worker(database_url, handler):
        with pytest.raises(RuntimeError):  # noqa: PT012 - the block is the unit of work
            async with unit_of_work() as session:
                await enqueue(session, "test.probe", {"n": 1})
                await events.record(session, "test.probe", customer_id=None, data={})
                raise RuntimeError("boom")
        await asyncio.sleep(2)
    assert seen == []
    assert await _scalar(database_url, "SELECT count(*) FROM pgqueuer") == 0
    assert await _scalar(database_url, "SELECT count(*) FROM pgqueuer_log") == 0
    assert await _scalar(database_url, "SELECT count(*) FROM events") == 0


async def test_purge_jobs_commit_in_their_own_unit_of_work(database_url: str) -> None:
    async def purge(conn: Connection) -> int:
        await events.record(conn, "test.purge_ran", customer_id=None, data={})
        return 3

    await purge_job(purge, "things_purged")({})
    assert await _scalar(database_url, "SELECT count(*) FROM events") == 1  # committed
    for name in ("events.purge_old", "idempotency.purge_expired"):
        await registry.JOBS[name]({})
