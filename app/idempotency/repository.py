"""Every SQL statement about stored Idempotency-Key responses (Core, typed results)."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert

from app.core import clock
from app.db import Connection
from app.idempotency.models import IdempotencyRecord

records: Table = IdempotencyRecord.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_hash: str
    status_code: int
    response_headers: dict[str, str]
    response_body: bytes


async def try_lock(conn: Connection, api_key_id: uuid.UUID, key: str) -> bool:
    """Take a transaction-scoped advisory lock on (api key, idempotency key); False if another has it."""
    result = await conn.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_name, 0))"),
        {"lock_name": f"idempotency:{api_key_id}:{key}"},
    )
    return bool(result.scalar_one())


async def find_live(conn: Connection, api_key_id: uuid.UUID, key: str) -> StoredResponse | None:
    query = select(
        records.c.request_hash,
        records.c.status_code,
        records.c.response_headers,
        records.c.response_body,
    ).where(
        records.c.api_key_id == api_key_id,
        records.c.key == key,
        records.c.expires_at > func.now(),
    )
    row = (await conn.execute(query)).first()
    return None if row is None else StoredResponse(**row._mapping)


async def save(
    conn: Connection,
    *,
    api_key_id: uuid.UUID,
    key: str,
    request_hash: str,
    status_code: int,
    response_headers: Mapping[str, str],
    response_body: bytes,
    expires_at: datetime,
) -> None:
    values = {
        "api_key_id": api_key_id,
        "key": key,
        "request_hash": request_hash,
        "status_code": status_code,
        "response_headers": dict(response_headers),
        "response_body": response_body,
        "expires_at": expires_at,
    }
    statement = insert(records).values(values)
    # An expired record under the same key is replaced.
    statement = statement.on_conflict_do_update(
        index_elements=[records.c.api_key_id, records.c.key],
        set_={k: statement.excluded[k] for k in values if k not in ("api_key_id", "key")},
    )
    await conn.execute(statement)


async def purge_expired(conn: Connection, now: datetime | None = None) -> int:
    result = await conn.execute(
        delete(records).where(records.c.expires_at <= (now or clock.now())).returning(records.c.key)
    )
    return len(result.all())
