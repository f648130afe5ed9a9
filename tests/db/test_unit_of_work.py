"""unit_of_work(): commits when its block ends, rolls back on any exception or cancellation, and
always gives its connection back to the pool."""

import asyncio

import pytest
from sqlalchemy import exc, text

from app.db import engine as db
from app.db import unit_of_work
from tests.fixtures.database import scratch_ids


def _checked_out() -> int:
    return db.get_engine().sync_engine.pool.checkedout()  # type: ignore[attr-defined, no-any-return]


async def test_commits_at_the_end_and_not_before(scratch: None) -> None:
    async with unit_of_work() as conn:
        await conn.execute(text("INSERT INTO scratch (id) VALUES (1)"))
        assert await scratch_ids() == []  # others see nothing until the block ends
        assert _checked_out() == 1
    assert await scratch_ids() == [1]
    assert _checked_out() == 0


async def test_an_exception_rolls_back_everything(scratch: None) -> None:
    async def unit() -> None:
        async with unit_of_work() as conn:
            await conn.execute(text("INSERT INTO scratch (id) VALUES (1)"))
            raise LookupError

    with pytest.raises(LookupError):
        await unit()
    assert await scratch_ids() == []
    assert _checked_out() == 0


async def test_a_failed_statement_rolls_back_and_the_connection_is_reusable(
    scratch: None,
) -> None:
    async def unit() -> None:
        async with unit_of_work() as conn:
            await conn.execute(text("INSERT INTO scratch (id) VALUES (3)"))
            await conn.execute(text("INSERT INTO scratch (id) VALUES (1), (1)"))

    with pytest.raises(exc.IntegrityError, match="duplicate key"):
        await unit()
    async with unit_of_work() as conn:
        await conn.execute(text("INSERT INTO scratch (id) VALUES (2)"))
    assert await scratch_ids() == [2]
    assert _checked_out() == 0


async def test_a_cancelled_unit_rolls_back_and_returns_its_connection(scratch: None) -> None:
    inserted = asyncio.Event()

    async def unit() -> None:
        async with unit_of_work() as conn:
            await conn.execute(text("INSERT INTO scratch (id) VALUES (1)"))
            inserted.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(unit())
    await asyncio.wait_for(inserted.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await scratch_ids() == []
    assert _checked_out() == 0
