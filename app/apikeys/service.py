"""API keys: issue, list, revoke, and resolve a presented key to a caller."""

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys import repository
from app.apikeys.models import ApiKey
from app.apikeys.schemas import ApiKeyCreate
from app.core import clock
from app.core.auth import Caller, display_prefix, generate_key, hash_key
from app.core.errors import NotFound


async def create_key(
    session: AsyncSession, caller: Caller | None, payload: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """Issue a key; returns the stored row and the key itself, which is never stored."""
    if caller is not None:
        caller.require("admin")
    secret = generate_key()
    row = ApiKey(
        name=payload.name,
        prefix=display_prefix(secret),
        key_hash=hash_key(secret),
        scopes=list(payload.scopes),
        created_by=caller.key_id if caller else None,
    )
    await repository.add(session, row)
    await session.refresh(row)
    return row, secret


async def list_keys(session: AsyncSession, caller: Caller) -> Sequence[ApiKey]:
    caller.require("admin")
    return await repository.list_keys(session)


async def revoke_key(session: AsyncSession, caller: Caller, key_id: uuid.UUID) -> None:
    caller.require("admin")
    if not await repository.revoke(session, key_id, clock.now()):
        raise NotFound(f"No active API key {key_id}.")


async def authenticate(session: AsyncSession, presented: str) -> Caller | None:
    row = await repository.find_active_by_hash(session, hash_key(presented))
    if row is None:
        return None
    return Caller(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))


async def has_any_key(session: AsyncSession) -> bool:
    return await repository.count_active(session) > 0
