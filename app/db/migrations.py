"""Alembic, driven from code: the CLI, `kehu serve` and the test fixtures all migrate through here."""

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

ROOT = Path(__file__).resolve().parents[2]
# Tables that exist but are not ours to model: pgqueuer's queue, created by the first migration.
EXTERNAL_TABLES = frozenset(
    {"pgqueuer", "pgqueuer_log", "pgqueuer_schedules", "pgqueuer_statistics"}
)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's filter: everything but pgqueuer's tables (used by env.py and the drift test)."""
    if type_ == "table" and name in EXTERNAL_TABLES:
        return False
    table = getattr(obj, "table", None)
    return not (table is not None and getattr(table, "name", None) in EXTERNAL_TABLES)


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def applied_revision(conn: AsyncConnection) -> str | None:
    """The revision the database's schema is at (None before the first migration ran)."""
    exists = await conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists.scalar_one():
        return None
    result = await conn.execute(text("SELECT version_num FROM alembic_version"))
    return result.scalar_one_or_none()


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
