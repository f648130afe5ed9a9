import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.models import ApiKey


async def find_active_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    return (await session.execute(query)).scalar_one_or_none()


async def get(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def add(session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    return key


LIST_SORT = "created_at"


def list_query() -> Select[Any]:
    """Every key, oldest first, as Core rows (never the hash), for ``fetch_page``."""
    keys = ApiKey.__table__.c
    return select(
        keys.id, keys.name, keys.prefix, keys.scopes, keys.created_at, keys.revoked_at
    ).order_by(keys.created_at, keys.id)


async def any_key_ever(session: AsyncSession) -> bool:
    """Whether the table has any row at all, revoked keys included."""
    return (await session.execute(select(ApiKey.id).limit(1))).first() is not None


async def lock_admin_keys(session: AsyncSession) -> None:
    """Serialise changes to the set of active admin keys until this transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('kehu.api_keys.admins', 0))")
    )


async def get_active(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    return (await session.execute(query)).scalar_one_or_none()


async def count_active_admins(session: AsyncSession) -> int:
    query = (
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.revoked_at.is_(None), ApiKey.scopes.contains(["admin"]))
    )
    return int((await session.execute(query)).scalar_one())


async def revoke(session: AsyncSession, key_id: uuid.UUID, when: datetime) -> bool:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=when)
        .returning(ApiKey.id)
    )
    return result.first() is not None
