"""DriverStatement with ``only_write``: no BEGIN/COMMIT when it is the unit's first statement, and
nothing written after it can commit apart from it."""

import pytest
from sqlalchemy import exc, text

from app.db import unit_of_work
from app.db.driver import DriverStatement
from tests.fixtures.database import scratch_ids

_INSERT = DriverStatement("INSERT INTO scratch (id) VALUES ($1) RETURNING id", ["id"])


async def test_first_statement_commits_on_its_own_and_the_rest_of_the_unit_only_reads(
    scratch: None,
) -> None:
    async def unit() -> None:
        async with unit_of_work() as conn:
            assert (await _INSERT.fetchrow(conn, {"id": 1}, only_write=True))["id"] == 1
            # Visible to others at once: it ran without BEGIN, in a transaction of its own.
            assert await scratch_ids() == [1]
            count = await conn.execute(text("SELECT count(*) FROM scratch"))
            assert count.scalar_one() == 1  # reading afterwards is fine ...
            await conn.execute(text("INSERT INTO scratch (id) VALUES (2)"))  # ... writing is not

    with pytest.raises(exc.DBAPIError, match="read-only transaction"):
        await unit()
    assert await scratch_ids() == [1]

    # The pooled connection goes back writable: the next unit is an ordinary transaction.
    async with unit_of_work() as conn:
        await conn.execute(text("INSERT INTO scratch (id) VALUES (3)"))
        await conn.execute(text("INSERT INTO scratch (id) VALUES (4)"))
    assert await scratch_ids() == [1, 3, 4]


async def test_after_another_statement_it_joins_the_units_transaction(scratch: None) -> None:
    async def unit_that_fails() -> None:
        async with unit_of_work() as conn:
            await conn.execute(text("SELECT 1"))
            await _INSERT.fetchrow(conn, {"id": 5}, only_write=True)
            assert await scratch_ids() == []  # not committed yet
            raise RuntimeError("roll the unit back")

    with pytest.raises(RuntimeError):
        await unit_that_fails()
    assert await scratch_ids() == []

    async with unit_of_work() as conn:
        await conn.execute(text("INSERT INTO scratch (id) VALUES (6)"))
        await _INSERT.fetchrow(conn, {"id": 7}, only_write=True)
        await conn.execute(text("INSERT INTO scratch (id) VALUES (8)"))
    assert await scratch_ids() == [6, 7, 8]


async def test_a_failing_only_write_statement_leaves_nothing_and_the_connection_usable(
    scratch: None,
) -> None:
    async with unit_of_work() as conn:
        await _INSERT.fetchrow(conn, {"id": 9}, only_write=True)
    with pytest.raises(exc.IntegrityError):
        async with unit_of_work() as conn:
            await _INSERT.fetchrow(conn, {"id": 9}, only_write=True)
    async with unit_of_work() as conn:
        await _INSERT.fetchrow(conn, {"id": 10}, only_write=True)
    assert await scratch_ids() == [9, 10]
