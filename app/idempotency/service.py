"""Idempotency-Key: a retried request replays the first one's stored response instead of running twice.

The response is stored in the same transaction as the change it answers, under a transaction-scoped
advisory lock on (API key, idempotency key): a concurrent duplicate gets 409, a retry after a crash
either finds the stored response or runs for the first time, never both. REST (the header) and
GraphQL (the `idempotencyKey` argument) share this; requests are compared by a fingerprint of their
canonical JSON, so spacing and key order do not make the same request a different one.

``requested_key`` and ``run_once`` hold every decision (which keys are valid, where a key is refused,
replay or run, what is stored); the transports only read the key and turn a stored response back into
theirs. Framework-free.
"""

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeAlias, TypeVar

from app.core import clock
from app.core.config import get_settings
from app.core.errors import BadRequest, Conflict, ValidationFailed
from app.db import Connection
from app.idempotency import repository
from app.idempotency.repository import StoredResponse

# A stored answer, as ``run_once`` hands it to ``replay``.
StoredAnswer: TypeAlias = StoredResponse
T = TypeVar("T")

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# The REST header: visible ASCII, inner spaces allowed (an HTTP field value, RFC 9110 5.5).
HEADER_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"
_HEADER_VALUE = re.compile(HEADER_PATTERN)
# The response headers a replay repeats (lower case, as stored).
REPLAYED_HEADERS = frozenset({"content-type", "etag", "location"})


def check_key(key: str, name: str = HEADER, *, header: bool = False) -> str:
    """``key`` if it is a valid idempotency key, else 400 ``invalid_idempotency_key``: 1 to 255
    printable characters; as an HTTP header (``header``), visible ASCII with no space at either end."""
    printable = _HEADER_VALUE.match(key) is not None if header else key.isprintable()
    if not (1 <= len(key) <= MAX_KEY_LENGTH and printable):
        what = "ASCII characters, with no space at either end" if header else "characters"
        raise BadRequest(
            f"{name} must be 1 to {MAX_KEY_LENGTH} printable {what}.",
            code="invalid_idempotency_key",
        )
    return key


def requested_key(value: str | None, *, stores_responses: bool = True) -> str | None:
    """The ``Idempotency-Key`` header a write sent, checked; None without one. An operation whose
    response must never be stored (it holds a secret) refuses any key with 400
    ``idempotency_not_supported``: a replay would need the secret."""
    if value is None:
        return None
    key = check_key(value, HEADER, header=True)
    if not stores_responses:
        raise BadRequest(
            f"{HEADER} is not supported here: the response holds a secret that is never stored.",
            code="idempotency_not_supported",
        )
    return key


@dataclass(frozen=True, slots=True)
class Answer:
    """What a request answered, as a replay would repeat it."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes


async def run_once(
    conn: Connection,
    api_key_id: uuid.UUID,
    key: str | None,
    request_fingerprint: Callable[[], Awaitable[str]],
    run: Callable[[], Awaitable[T]],
    *,
    answer: Callable[[T], Answer],
    replay: Callable[[StoredAnswer], T],
    ttl: timedelta | None = None,
) -> T:
    """Run ``run`` at most once per (API key, idempotency key), inside the caller's transaction.

    Without a key it simply runs. With one: a stored answer for the same request is replayed
    (``replay``), the same key with another request is 422 ``idempotency_key_reused``, a concurrent
    one 409 ``idempotency_key_in_use``; otherwise ``run`` runs and its answer, when a success (2xx),
    is stored in the same transaction for ``ttl`` (the configured hours by default). The fingerprint
    is computed only when there is a key."""
    if key is None:
        return await run()
    fingerprint_ = await request_fingerprint()
    stored = await begin(conn, api_key_id, key, fingerprint_)
    if stored is not None:
        return replay(stored)
    result = await run()
    given = answer(result)
    if 200 <= given.status_code < 300:
        await remember(
            conn,
            api_key_id,
            key,
            fingerprint_,
            status_code=given.status_code,
            headers={
                k.lower(): v for k, v in given.headers.items() if k.lower() in REPLAYED_HEADERS
            },
            body=given.body,
            ttl=ttl if ttl is not None else timedelta(hours=get_settings().idempotency_ttl_hours),
        )
    return result


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
) -> StoredAnswer | None:
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


async def purge_expired(conn: Connection) -> int:
    """Forget responses past their time to live; returns how many."""
    return await repository.purge_expired(conn)
