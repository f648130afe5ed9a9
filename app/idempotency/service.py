"""Idempotency-Key: a retried request replays the first one's stored response instead of running twice.

The response is stored in the same transaction as the change it answers, under a transaction-scoped
advisory lock on (API key, idempotency key): a concurrent duplicate gets 409, a retry after a crash
either finds the stored response or runs for the first time, never both. REST (the header) and
GraphQL (the `idempotencyKey` argument) share this; requests are compared by a fingerprint of their
canonical JSON, so spacing and key order do not make the same request a different one.
"""

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import timedelta

from app.core import clock
from app.core.errors import BadRequest, Conflict, ValidationFailed
from app.db import Connection
from app.idempotency import repository
from app.idempotency.repository import StoredResponse

MAX_KEY_LENGTH = 255


def check_key(key: str, name: str = "Idempotency-Key") -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(
            f"{name} must be 1 to {MAX_KEY_LENGTH} printable characters.",
            code="invalid_idempotency_key",
        )
    return key


def canonical_body(body: bytes) -> bytes:
    """The JSON body with sorted keys and no insignificant white space; other bodies as they are."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return body
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def fingerprint(*parts: str, body: bytes = b"") -> str:
    """What makes two requests "the same": the operation (method, path, query or mutation name)
    and the canonical body."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    digest.update(canonical_body(body))
    return digest.hexdigest()


async def begin(
    conn: Connection, api_key_id: uuid.UUID, key: str, request_fingerprint: str
) -> StoredResponse | None:
    """Claim the key for this transaction. Returns the stored response to replay, or None when the
    request is to run now (then call ``remember`` with its response before the transaction ends)."""
    if not await repository.try_lock(conn, api_key_id, key):
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_key_in_use",
            headers={"Retry-After": "1"},
        )
    stored = await repository.find_live(conn, api_key_id, key)
    if stored is not None and stored.request_hash != request_fingerprint:
        raise ValidationFailed(
            "This Idempotency-Key was used with a different request; use a new key.",
            code="idempotency_key_reused",
        )
    return stored


async def remember(
    conn: Connection,
    api_key_id: uuid.UUID,
    key: str,
    request_fingerprint: str,
    *,
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    ttl: timedelta,
) -> None:
    await repository.save(
        conn,
        api_key_id=api_key_id,
        key=key,
        request_hash=request_fingerprint,
        status_code=status_code,
        response_headers=headers,
        response_body=body,
        expires_at=clock.now() + ttl,
    )
