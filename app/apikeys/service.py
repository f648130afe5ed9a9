"""API keys: issue, list, revoke, and resolve a presented key to a caller."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys import repository
from app.apikeys.models import ApiKey
from app.apikeys.schemas import ApiKeyCreate
from app.core import clock
from app.core.auth import Caller, display_prefix, generate_key, hash_key
from app.core.errors import Conflict, NotFound
from app.core.pagination import Page, fetch_page


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


async def list_keys(
    session: AsyncSession, caller: Caller, *, limit: int, cursor: str | None
) -> Page[Any]:
    """One page of keys, oldest first (rows with the ApiKeyOut fields)."""
    caller.require("admin")
    return await fetch_page(
        session, repository.list_query(), limit=limit, cursor=cursor, sort=repository.LIST_SORT
    )


async def revoke_key(session: AsyncSession, caller: Caller, key_id: uuid.UUID) -> None:
    """Revoke a key; never the last active admin key (409 ``last_admin_key``), which would leave
    nobody able to manage keys. The check and the revocation run under one lock, so two admin keys
    revoking each other at once cannot both succeed."""
    caller.require("admin")
    await repository.lock_admin_keys(session)
    row = await repository.get_active(session, key_id)
    if row is None:
        raise NotFound(f"No active API key {key_id}.")
    if "admin" in row.scopes and await repository.count_active_admins(session) <= 1:
        raise Conflict(
            "This is the last active admin key; create another admin key before revoking it.",
            code="last_admin_key",
        )
    await repository.revoke(session, key_id, clock.now())


async def authenticate(session: AsyncSession, presented: str) -> Caller | None:
    row = await repository.find_active_by_hash(session, hash_key(presented))
    if row is None:
        return None
    return Caller(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))


async def create_bootstrap_key(session: AsyncSession) -> str | None:
    """The first admin key, when the database has never had a key (revoked ones count); else None."""
    await repository.lock_admin_keys(session)
    if await repository.any_key_ever(session):
        return None
    _, secret = await create_key(
        session, None, ApiKeyCreate(name="bootstrap-admin", scopes=["admin"])
    )
    return secret
