"""The cases' jobs: flag missed SLA deadlines."""

from typing import Any

import structlog

from app.cases import service
from app.db import unit_of_work
from app.worker.queue import JobHandler

log = structlog.get_logger("kehu.cases")


async def mark_sla_breaches(_: dict[str, Any]) -> None:
    """Every missed first-response or resolution deadline gets its one ``case.sla_breached``
    event: the flag and the event are one conditional UPDATE and its transaction, so two runs at
    once flag each breach once."""
    async with unit_of_work() as conn:
        flagged = await service.mark_sla_breaches(conn)
    if flagged:
        log.info("case_sla_breaches_flagged", flagged=flagged)


JOBS: dict[str, JobHandler] = {"cases.mark_sla_breaches": mark_sla_breaches}
# Every minute (UTC): a breach is flagged within a minute of its deadline.
SCHEDULES: dict[str, str] = {"cases.mark_sla_breaches": "* * * * *"}
