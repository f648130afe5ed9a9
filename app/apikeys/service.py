"""API keys: issue, list, revoke, and resolve a presented key to a caller."""

import uuid

from app.apikeys import repository
from app.apikeys.schemas import ApiKeyCreate, ApiKeyOut
from app.core import clock
from app.core.auth import Caller, display_prefix, generate_key, hash_key
from app.core.errors import Conflict, NotFound
from app.core.pagination import Page, fetch_page
from app.db import Connection


async def create_key(
    conn: Connection, caller: Caller | None, payload: ApiKeyCreate
) -> tuple[ApiKeyOut, str]:
    """Issue a key; returns the stored key and the key itself, which is never stored."""
    if caller is not None:
        caller.require("admin")
    secret = generate_key()
    key = await repository.insert_key(
        conn,
        name=payload.name,
        prefix=display_prefix(secret),
        key_hash=hash_key(secret),
        scopes=list(payload.scopes),
        created_by=caller.key_id if caller else None,
    )
    return key, secret


async def list_keys(
    conn: Connection, caller: Caller, *, limit: int, cursor: str | None
) -> Page[ApiKeyOut]:
    """One page of keys, oldest first (rows with the ApiKeyOut fields)."""
    caller.require("admin")
    page = await fetch_page(
        conn, repository.list_query(), limit=limit, cursor=cursor, sort=repository.LIST_SORT
    )
    return page.mapped(ApiKeyOut.model_validate)


async def all_keys(conn: Connection, caller: Caller, *, include_revoked: bool) -> list[ApiKeyOut]:
    """Every key, oldest first, unpaged: the command line's list (a key table stays small)."""
    caller.require("admin")
    return await repository.list_all(conn, include_revoked=include_revoked)


async def revoke_key(conn: Connection, caller: Caller, key_id: uuid.UUID) -> None:
    """Revoke a key; never the last active admin key (409 ``last_admin_key``), which would leave
    nobody able to manage keys. The check and the revocation run under one lock, so two admin keys
    revoking each other at once cannot both succeed."""
    caller.require("admin")
    await repository.lock_admin_keys(conn)
    row = await repository.get_active(conn, key_id)
    if row is None:
        raise NotFound(f"No active API key {key_id}.")
    if "admin" in row.scopes and await repository.count_active_admins(conn) <= 1:
        raise Conflict(
            "This is the last active admin key; create another admin key before revoking it.",
            code="last_admin_key",
        )
    await repository.revoke(conn, key_id, clock.now())


async def authenticate(conn: Connection, presented: str) -> Caller | None:
    row = await repository.find_active_by_hash(conn, hash_key(presented))
    if row is None:
        return None
    return Caller(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))


async def create_bootstrap_key(conn: Connection) -> str | None:
    """The first admin key, when the database has never had a key (revoked ones count); else None."""
    await repository.lock_admin_keys(conn)
    if await repository.any_key_ever(conn):
        return None
    _, secret = await create_key(conn, None, ApiKeyCreate(name="bootstrap-admin", scopes=["admin"]))
    return secret
