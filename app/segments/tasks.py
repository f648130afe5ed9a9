"""The segment jobs: the scheduled refresh of every dynamic segment (``KEHU_SEGMENTS_REFRESH_CRON``,
UTC), which catches up what moves with time alone (windows, metrics after an analytics refresh)."""

from typing import Any

import structlog

from app.core.config import get_settings
from app.db import unit_of_work
from app.segments import service
from app.worker.queue import JobHandler

log = structlog.get_logger("kehu.segments")


async def scheduled_refresh(_: dict[str, Any]) -> None:
    async with unit_of_work() as conn:
        results = await service.refresh_all(conn)
    for result in results:
        log.info(
            "segment_refreshed",
            segment_id=str(result.segment_id),
            entered=result.entered,
            exited=result.exited,
        )


JOBS: dict[str, JobHandler] = {"segments.scheduled_refresh": scheduled_refresh}
SCHEDULES: dict[str, str] = {"segments.scheduled_refresh": get_settings().segments_refresh_cron}
