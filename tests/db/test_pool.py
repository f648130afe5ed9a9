"""The connection pool serves waiting checkouts first come, first served (app/db/pool.py)."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool

from app.db.engine import async_url
from app.db.pool import FairAsyncQueuePool, HandoffQueue


def _engine(url: str, poolclass: type[Pool], timeout: float = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(url), poolclass=poolclass, pool_size=1, max_overflow=0, pool_timeout=timeout
    )


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = _engine(database_url, FairAsyncQueuePool)
    yield engine
    await engine.dispose()


def _waiting(engine: AsyncEngine) -> int:
    pool = engine.sync_engine.pool
    if isinstance(pool, FairAsyncQueuePool):
        return pool.waiting()
    # SQLAlchemy's own pool: the waiters of its asyncio.Queue.
    getters = pool._pool._queue._getters  # type: ignore[attr-defined]
    return sum(1 for getter in getters if not getter.done())


async def _order_of_checkouts(engine: AsyncEngine, waiters: int) -> list[str]:
    """One task holds the only connection while ``waiters`` tasks queue for it one after the other;
    then the holder gives it back and at once asks again, in the same step."""
    order: list[str] = []

    async def waiter(name: str) -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            order.append(name)

    holder = await engine.connect()
    await holder.execute(text("SELECT 1"))
    tasks = []
    for index in range(waiters):
        tasks.append(asyncio.create_task(waiter(f"w{index}")))
        async with asyncio.timeout(5):
            while _waiting(engine) < index + 1:  # noqa: ASYNC110 (the pool has no event)
                await asyncio.sleep(0.001)
    await holder.close()
    async with engine.connect() as again:
        await again.execute(text("SELECT 1"))
        order.append("holder again")
    await asyncio.gather(*tasks)
    return order


async def test_waiting_checkouts_are_served_in_arrival_order(
    one_connection: AsyncEngine,
) -> None:
    order = await _order_of_checkouts(one_connection, waiters=4)
    assert order == ["w0", "w1", "w2", "w3", "holder again"]


async def test_sqlalchemys_own_pool_lets_a_new_checkout_jump_the_queue(database_url: str) -> None:
    # Why the pool exists: with SQLAlchemy's asyncio queue the returning holder takes the
    # connection again before any of the tasks that were already waiting.
    engine = _engine(database_url, AsyncAdaptedQueuePool)
    try:
        order = await _order_of_checkouts(engine, waiters=2)
        assert order[0] == "holder again"
    finally:
        await engine.dispose()


async def test_a_checkout_that_times_out_leaves_the_queue_and_the_pool_whole(
    database_url: str,
) -> None:
    engine = _engine(database_url, FairAsyncQueuePool, timeout=0.2)
    pool = engine.sync_engine.pool
    assert isinstance(pool, FairAsyncQueuePool)
    try:
        holder = await engine.connect()
        with pytest.raises(exc.TimeoutError):
            await engine.connect()
        assert pool.waiting() == 0
        await holder.close()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 41 + 1"))).scalar_one() == 42
        assert pool.checkedout() == 0
    finally:
        await engine.dispose()


async def test_a_cancelled_checkout_in_the_middle_of_a_handover_passes_the_connection_on() -> None:
    queue: HandoffQueue[str] = HandoffQueue(maxsize=1)
    first = asyncio.create_task(queue._wait(timeout_seconds=None))
    second = asyncio.create_task(queue._wait(timeout_seconds=None))
    await asyncio.sleep(0)
    assert queue.waiting() == 2
    queue.put_nowait("connection")  # handed to `first`, which has not run yet ...
    first.cancel()  # ... and is cancelled before it does
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 5) == "connection"
    assert queue.waiting() == 0


async def test_cancelled_waiters_leave_the_queue() -> None:
    queue: HandoffQueue[str] = HandoffQueue(maxsize=1)
    waiters = [asyncio.create_task(queue._wait(timeout_seconds=None)) for _ in range(3)]
    await asyncio.sleep(0)
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert queue.waiting() == 0
    queue.put_nowait("connection")
    assert queue.qsize() == 1
    assert queue.get_nowait() == "connection"
