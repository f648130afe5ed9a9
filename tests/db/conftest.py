"""A scratch table on a write pool of one connection, for the tests of the database layer."""

import pytest
from sqlalchemy import text

from app.db import engine as db
from app.db import unit_of_work


@pytest.fixture
async def scratch(database_url: str) -> None:
    # One write connection, so every unit in a test runs on the same pooled connection.
    await db.dispose()
    db.configure(db.create_engine(database_url, pool_size=1))
    async with unit_of_work() as conn:
        await conn.execute(text("CREATE TABLE scratch (id int PRIMARY KEY)"))
