"""Every job the worker knows: entrypoint name -> handler. Each handler opens its own unit of work."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from app.db import unit_of_work
from app.events import service as events
from app.idempotency import repository as idempotency

JobHandler = Callable[[dict[str, Any]], Awaitable[None]]
log = structlog.get_logger("kehu.worker")


async def purge_expired_idempotency_keys(_: dict[str, Any]) -> None:
    async with unit_of_work() as conn:
        removed = await idempotency.purge_expired(conn)
    log.info("idempotency_keys_purged", removed=removed)


async def purge_old_events(_: dict[str, Any]) -> None:
    async with unit_of_work() as conn:
        removed = await events.purge_expired(conn)
    log.info("events_purged", removed=removed)


JOBS: dict[str, JobHandler] = {
    "idempotency.purge_expired": purge_expired_idempotency_keys,
    "events.purge_old": purge_old_events,
}

# Cron expressions for pgqueuer's scheduler (UTC): housekeeping runs hourly and daily.
SCHEDULES: dict[str, str] = {
    "idempotency.purge_expired": "17 * * * *",
    "events.purge_old": "41 3 * * *",
}


def decode_payload(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"value": value}
