import asyncio
import uuid

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.engine import async_url
from app.db.migrations import alembic_config, include_object, upgrade
from app.db.models import Base
from tests.fixtures import database


def test_single_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


async def test_upgrade_downgrade_upgrade_and_no_drift(db_server: str) -> None:
    name, url = await database.create_empty(db_server, "kehu_test_migrations")
    try:
        await asyncio.to_thread(upgrade, url)
        await asyncio.to_thread(command.downgrade, alembic_config(url), "base")
        await asyncio.to_thread(upgrade, url)
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as conn:
                diffs = await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(
                            sync, opts={"include_object": include_object, "compare_type": True}
                        ),
                        Base.metadata,
                    )
                )
        finally:
            await engine.dispose()
        assert diffs == [], diffs
    finally:
        await database.drop(db_server, name)


async def test_event_positions_migration_stamps_existing_events_in_old_order(
    db_server: str,
) -> None:
    name, url = await database.create_empty(db_server, "kehu_test_migr_events")
    customer = uuid.uuid4()
    try:
        await asyncio.to_thread(upgrade, url, "20261125_0001")
        conn = await asyncpg.connect(url)
        try:
            # (tx_id, identity position): the old feed order. Customer sequence 2 sorts before 1
            # there, as transaction-id order could make it.
            rows = [
                ("a", None, None, 10),
                ("c2", customer, 2, 11),
                ("b", None, None, 12),
                ("c1", customer, 1, 13),
                ("d", None, None, 14),
            ]
            for type_, customer_id, sequence, tx in rows:
                await conn.execute(
                    "INSERT INTO events (id, type, customer_id, sequence, occurred_at, data, tx_id)"
                    " VALUES ($1, $2, $3, $4, now(), '{}', $5::text::xid8)",
                    uuid.uuid4(),
                    type_,
                    customer_id,
                    sequence,
                    str(tx),
                )
        finally:
            await conn.close()
        await asyncio.to_thread(upgrade, url)
        conn = await asyncpg.connect(url)
        try:
            stamped = await conn.fetch("SELECT type, position FROM events ORDER BY position")
            # Old order a, c2, b, c1, d; the customer's two slots (2 and 4) go to sequences 1, 2.
            assert [(r["type"], r["position"]) for r in stamped] == [
                ("a", 1),
                ("c1", 2),
                ("b", 3),
                ("c2", 4),
                ("d", 5),
            ]
            assert await conn.fetchval("SELECT last_position FROM event_feed_state") == 5
            await conn.execute(
                "INSERT INTO events (id, type, occurred_at, data) VALUES ($1, 'new', now(), '{}')",
                uuid.uuid4(),
            )
            assert await conn.fetchval("SELECT position FROM events WHERE type = 'new'") is None
        finally:
            await conn.close()
        # Downgrade: the unstamped row gets the next position, and inserts number on from there.
        await asyncio.to_thread(command.downgrade, alembic_config(url), "20261125_0001")
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT position FROM events WHERE type = 'new'") == 6
            await conn.execute(
                "INSERT INTO events (id, type, occurred_at, data) VALUES ($1, 'old', now(), '{}')",
                uuid.uuid4(),
            )
            assert await conn.fetchval("SELECT position FROM events WHERE type = 'old'") == 7
        finally:
            await conn.close()
    finally:
        await database.drop(db_server, name)
