"""The event log's jobs: purge events past their retention."""

from typing import Any

import structlog

from app.db import unit_of_work
from app.events import service
from app.worker.queue import JobHandler

log = structlog.get_logger("kehu.worker")


async def purge_old_events(_: dict[str, Any]) -> None:
    async with unit_of_work() as conn:
        removed = await service.purge_expired(conn)
    log.info("events_purged", removed=removed)


JOBS: dict[str, JobHandler] = {"events.purge_old": purge_old_events}
# Daily (UTC); events are kept service.RETENTION_DAYS days.
SCHEDULES: dict[str, str] = {"events.purge_old": "41 3 * * *"}
