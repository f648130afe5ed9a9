import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.idempotency.models import IdempotencyRecord


async def try_lock(session: AsyncSession, api_key_id: uuid.UUID, key: str) -> bool:
    """Take a transaction-scoped advisory lock on (api key, idempotency key); False if another has it."""
    result = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_name, 0))"),
        {"lock_name": f"idempotency:{api_key_id}:{key}"},
    )
    return bool(result.scalar_one())


async def find_live(
    session: AsyncSession, api_key_id: uuid.UUID, key: str
) -> IdempotencyRecord | None:
    query = select(IdempotencyRecord).where(
        IdempotencyRecord.api_key_id == api_key_id,
        IdempotencyRecord.key == key,
        IdempotencyRecord.expires_at > func.now(),
    )
    return (await session.execute(query)).scalar_one_or_none()


async def save(session: AsyncSession, record: IdempotencyRecord) -> None:
    values = {
        "api_key_id": record.api_key_id,
        "key": record.key,
        "request_hash": record.request_hash,
        "status_code": record.status_code,
        "response_headers": record.response_headers,
        "response_body": record.response_body,
        "expires_at": record.expires_at,
    }
    statement = insert(IdempotencyRecord).values(values)
    # An expired record under the same key is replaced.
    statement = statement.on_conflict_do_update(
        index_elements=[IdempotencyRecord.api_key_id, IdempotencyRecord.key],
        set_={k: statement.excluded[k] for k in values if k not in ("api_key_id", "key")},
    )
    await session.execute(statement)


async def purge_expired(session: AsyncSession, now: datetime | None = None) -> int:
    result = await session.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.expires_at <= (now or clock.now()))
        .returning(IdempotencyRecord.key)
    )
    return len(result.all())
