"""Idempotency-Key's jobs: forget stored responses past their time to live."""

from typing import Any

import structlog

from app.db import unit_of_work
from app.idempotency import service
from app.worker.queue import JobHandler

log = structlog.get_logger("kehu.worker")


async def purge_expired_idempotency_keys(_: dict[str, Any]) -> None:
    async with unit_of_work() as conn:
        removed = await service.purge_expired(conn)
    log.info("idempotency_keys_purged", removed=removed)


JOBS: dict[str, JobHandler] = {"idempotency.purge_expired": purge_expired_idempotency_keys}
# Hourly (UTC).
SCHEDULES: dict[str, str] = {"idempotency.purge_expired": "17 * * * *"}
