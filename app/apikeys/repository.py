"""Every SQL statement about API keys (Core, typed results; the hash never leaves this module
except as a lookup argument)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, func, insert, select, text, update

from app.apikeys.models import ApiKey
from app.apikeys.schemas import ApiKeyOut
from app.db import Connection

keys: Table = ApiKey.__table__  # type: ignore[assignment]
ACTIVE = keys.c.revoked_at.is_(None)
_PUBLIC = (
    keys.c.id,
    keys.c.name,
    keys.c.prefix,
    keys.c.scopes,
    keys.c.created_at,
    keys.c.revoked_at,
)


def _key(row: Any) -> ApiKeyOut:
    return ApiKeyOut.from_stored(row._mapping)


async def find_active_by_hash(conn: Connection, key_hash: str) -> ApiKeyOut | None:
    row = (await conn.execute(select(*_PUBLIC).where(keys.c.key_hash == key_hash, ACTIVE))).first()
    return None if row is None else _key(row)


async def insert_key(
    conn: Connection,
    *,
    name: str,
    prefix: str,
    key_hash: str,
    scopes: list[str],
    created_by: uuid.UUID | None,
) -> ApiKeyOut:
    statement = (
        insert(keys)
        .values(
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            scopes=scopes,
            created_by=created_by,
        )
        .returning(*_PUBLIC)
    )
    return _key((await conn.execute(statement)).one())


LIST_SORT = "created_at"


def list_query() -> Select[Any]:
    """Every key, oldest first, without the hash, for ``fetch_page``."""
    return select(*_PUBLIC).order_by(keys.c.created_at, keys.c.id)


async def list_all(conn: Connection, *, include_revoked: bool) -> list[ApiKeyOut]:
    """Every key (or every active one), oldest first, without the hash, in one list."""
    query = list_query() if include_revoked else list_query().where(ACTIVE)
    return [_key(row) for row in (await conn.execute(query)).all()]


async def any_key_ever(conn: Connection) -> bool:
    """Whether the table has any row at all, revoked keys included."""
    return (await conn.execute(select(keys.c.id).limit(1))).first() is not None


async def lock_admin_keys(conn: Connection) -> None:
    """Serialise changes to the set of active admin keys until this transaction ends."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('kehu.api_keys.admins', 0))")
    )


async def get_active(conn: Connection, key_id: uuid.UUID) -> ApiKeyOut | None:
    row = (await conn.execute(select(*_PUBLIC).where(keys.c.id == key_id, ACTIVE))).first()
    return None if row is None else _key(row)


async def count_active_admins(conn: Connection) -> int:
    query = select(func.count()).select_from(keys).where(ACTIVE, keys.c.scopes.contains(["admin"]))
    return int((await conn.execute(query)).scalar_one())


async def revoke(conn: Connection, key_id: uuid.UUID, when: datetime) -> bool:
    result = await conn.execute(
        update(keys).where(keys.c.id == key_id, ACTIVE).values(revoked_at=when).returning(keys.c.id)
    )
    return result.first() is not None
