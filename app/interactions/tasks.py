"""The interactions' jobs: announce follow-ups when they fall due (``follow_up.due``, once each)."""

from typing import Any

import structlog

from app.core import clock
from app.db import unit_of_work
from app.interactions import service
from app.worker.queue import JobHandler

log = structlog.get_logger("kehu.worker")


async def announce_due_follow_ups(_: dict[str, Any]) -> None:
    """Announce every due follow-up, a bounded batch per transaction, until none is left."""
    total = 0
    while True:
        batch = service.ANNOUNCE_BATCH
        async with unit_of_work() as conn:
            announced = await service.announce_due_follow_ups(conn, now=clock.now(), limit=batch)
        total += announced
        if announced < batch:
            break
    if total:
        log.info("follow_ups_announced", count=total)


JOBS: dict[str, JobHandler] = {"interactions.announce_due_follow_ups": announce_due_follow_ups}
# Every minute (UTC).
SCHEDULES: dict[str, str] = {"interactions.announce_due_follow_ups": "* * * * *"}
