"""The analytics jobs: run a requested refresh (``analytics.refresh``, enqueued by
``POST /v1/analytics/refresh``) and the scheduled one (``KEHU_ANALYTICS_REFRESH_CRON``, UTC)."""

import uuid
from typing import Any

import structlog

from app.analytics import refresh, service
from app.core import clock
from app.core.config import get_settings
from app.db import unit_of_work
from app.worker.queue import JobHandler

log = structlog.get_logger("kehu.analytics")


async def run_refresh(payload: dict[str, Any]) -> None:
    """Run the queued refresh the payload names (``{"refresh_id": ...}``)."""
    try:
        refresh_id = uuid.UUID(str(payload["refresh_id"]))
    except (KeyError, ValueError):
        log.error("analytics_refresh_bad_payload", payload=payload)
        return
    await refresh.run(refresh_id)


async def scheduled_refresh(_: dict[str, Any]) -> None:
    """Create a refresh as of today (UTC) and run it here, unless one is queued or running."""
    async with unit_of_work() as conn:
        created = await service.create_refresh(
            conn, as_of=clock.now().date(), requested_by=service.SCHEDULE
        )
    if created is None:
        log.info("analytics_scheduled_refresh_skipped", reason="a refresh is active")
        return
    await refresh.run(created.id)


JOBS: dict[str, JobHandler] = {
    service.REFRESH_JOB: run_refresh,
    "analytics.scheduled_refresh": scheduled_refresh,
}
SCHEDULES: dict[str, str] = {"analytics.scheduled_refresh": get_settings().analytics_refresh_cron}
