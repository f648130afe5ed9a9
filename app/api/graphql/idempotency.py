"""`idempotencyKey` on GraphQL mutations: the same contract as REST's Idempotency-Key header.

The mutation's result (as its REST output model) is stored in the mutation's own transaction; a retry
with the same key and the same arguments gets that result back (`replayed: true`), the same key with
other arguments is `idempotency_key_reused`, and a concurrent duplicate `idempotency_key_in_use`.
"""

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from app.core.auth import Caller
from app.core.config import get_settings
from app.db import Connection
from app.idempotency import service as idempotency

OutT = TypeVar("OutT", bound=BaseModel)


async def run_once(
    conn: Connection,
    caller: Caller,
    key: str | None,
    operation: str,
    arguments: Any,
    output: type[OutT],
    run: Callable[[], Awaitable[OutT]],
) -> tuple[OutT, bool]:
    """Run ``run`` once per (API key, idempotency key); returns its result and whether it was
    replayed from an earlier call."""
    if key is None:
        return await run(), False
    idempotency.check_key(key, "idempotencyKey")
    body = json.dumps(arguments, default=str, sort_keys=True).encode("utf-8", "surrogatepass")
    request_fingerprint = idempotency.fingerprint("graphql", operation, body=body)
    stored = await idempotency.begin(conn, caller.key_id, key, request_fingerprint)
    if stored is not None:
        return output.model_validate_json(stored.response_body), True
    result = await run()
    await idempotency.remember(
        conn,
        caller.key_id,
        key,
        request_fingerprint,
        status_code=200,
        headers={},
        body=result.model_dump_json().encode(),
        ttl=timedelta(hours=get_settings().idempotency_ttl_hours),
    )
    return result, False
