"""Runs the job worker: pgqueuer's QueueManager for jobs and SchedulerManager for the cron table."""

import asyncio
from collections.abc import Mapping
from contextlib import suppress
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]
import structlog
from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager, SchedulerManager
from pgqueuer.models import Schedule

from app.worker.registry import JOBS, SCHEDULES, JobHandler, decode_payload

log = structlog.get_logger("kehu.worker")


def _bind(qm: QueueManager, name: str, handler: JobHandler) -> None:
    @qm.entrypoint(name)
    async def run(job: Job) -> None:
        await handler(decode_payload(job.payload))


def _schedule(sm: SchedulerManager, name: str, expression: str) -> None:
    @sm.schedule(name, expression)
    async def run(_: Schedule) -> None:
        await JOBS[name]({})


class Worker:
    """One worker: dequeues jobs until ``stop()``; several may run against one database."""

    def __init__(
        self,
        dsn: str,
        jobs: Mapping[str, JobHandler] | None = None,
        schedules: Mapping[str, str] | None = None,
    ) -> None:
        self.dsn = dsn
        self.jobs = dict(JOBS if jobs is None else jobs)
        self.schedules = dict(SCHEDULES if schedules is None else schedules)
        self._managers: list[QueueManager | SchedulerManager] = []
        self._connections: list[asyncpg.Connection] = []

    async def run(self) -> None:
        queue_conn = await asyncpg.connect(self.dsn)
        schedule_conn = await asyncpg.connect(self.dsn)
        self._connections = [queue_conn, schedule_conn]
        qm = QueueManager(Queries(AsyncpgDriver(queue_conn)))
        for name, handler in self.jobs.items():
            _bind(qm, name, handler)
        sm = SchedulerManager(Queries(AsyncpgDriver(schedule_conn)))
        for name, expression in self.schedules.items():
            _schedule(sm, name, expression)
        self._managers = [qm, sm]
        log.info("worker_started", jobs=sorted(self.jobs), schedules=sorted(self.schedules))
        try:
            await asyncio.gather(
                qm.run(dequeue_timeout=timedelta(seconds=5), batch_size=10),
                sm.run() if self.schedules else asyncio.sleep(0),
            )
        except Exception:
            log.exception("worker_failed")
            raise
        finally:
            for conn in self._connections:
                with suppress(Exception):
                    await conn.close()
            log.info("worker_stopped")

    def stop(self) -> None:
        for manager in self._managers:
            manager.shutdown.set()
