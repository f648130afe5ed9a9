"""`idempotencyKey` on GraphQL mutations: the same contract as REST's Idempotency-Key header.

The mutation's result (as its REST output model) is stored in the mutation's own transaction; a retry
with the same key and the same arguments gets that result back (`replayed: true`), the same key with
other arguments is `idempotency_key_reused`, and a concurrent duplicate `idempotency_key_in_use`.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from app.core.auth import Caller
from app.db import Connection
from app.domains import idempotency

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
    if key is not None:
        idempotency.check_key(key, "idempotencyKey")

    async def fingerprint() -> str:
        body = json.dumps(arguments, default=str, sort_keys=True).encode("utf-8", "surrogatepass")
        return idempotency.fingerprint("graphql", operation, body=body)

    async def first_run() -> tuple[OutT, bool]:
        return await run(), False

    return await idempotency.run_once(
        conn,
        caller.key_id,
        key,
        fingerprint,
        first_run,
        answer=lambda result: idempotency.Answer(200, {}, result[0].model_dump_json().encode()),
        replay=lambda stored: (output.model_validate_json(stored.response_body), True),
    )
