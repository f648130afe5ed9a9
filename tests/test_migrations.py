import asyncio

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
    name = "kehu_test_migrations_" + database.TEMPLATE[-8:]
    admin = await database._admin(db_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = database.with_database(db_server, name)
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
