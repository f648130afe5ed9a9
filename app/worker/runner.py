"""Runs the job worker: pgqueuer's QueueManager for jobs and SchedulerManager for the cron table."""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]
import structlog
from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager, SchedulerManager
from pgqueuer.models import Schedule

from app.core import tracing
from app.worker.metrics import measured
from app.worker.registry import JOBS, RUNNERS, SCHEDULES, JobHandler, Runner, decode_payload

log = structlog.get_logger("kehu.worker")


def _bind(qm: QueueManager, name: str, handler: JobHandler) -> None:
    handler = measured(name, handler)

    @qm.entrypoint(name)
    async def run(job: Job) -> None:
        with tracing.job_span(name):
            await handler(decode_payload(job.payload))


def _schedule(sm: SchedulerManager, name: str, expression: str, handler: JobHandler) -> None:
    handler = measured(name, handler)

    @sm.schedule(name, expression)
    async def run(_: Schedule) -> None:
        with tracing.job_span(name):
            await handler({})


class Worker:
    """One worker: dequeues jobs until ``stop()``; several may run against one database."""

    def __init__(
        self,
        dsn: str,
        jobs: Mapping[str, JobHandler] | None = None,
        schedules: Mapping[str, str] | None = None,
        runners: Sequence[Callable[[], Runner]] | None = None,
    ) -> None:
        self.dsn = dsn
        self.runners = list(RUNNERS if runners is None else runners)
        self._loops: list[Runner] = []
        self.jobs = dict(JOBS if jobs is None else jobs)
        self.schedules = dict(SCHEDULES if schedules is None else schedules)
        self._managers: list[QueueManager | SchedulerManager] = []
        self._connections: list[asyncpg.Connection] = []
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Work until ``stop()``, with the domains' long-running loops (``Domain.runners``)
        beside the jobs. A database that is down or not migrated yet is retried with a growing
        pause (up to 30 s), so the worker starts before the database does."""
        self._loops = [make() for make in self.runners]
        tasks = [asyncio.create_task(loop.run()) for loop in self._loops]
        try:
            await self._work()
        finally:
            for loop in self._loops:
                loop.stop()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=30)
                for task in pending:
                    task.cancel()

    async def _work(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await self._run_once()
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("worker_waiting_for_database", error=type(exc).__name__, retry_in=delay)
            except Exception:
                log.exception("worker_failed")
                raise
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)

    async def _run_once(self) -> None:
        self._connections = []
        try:
            queue_conn = await asyncpg.connect(self.dsn)
            self._connections.append(queue_conn)
            schedule_conn = await asyncpg.connect(self.dsn)
            self._connections.append(schedule_conn)
            qm = QueueManager(Queries(AsyncpgDriver(queue_conn)))
            for name, handler in self.jobs.items():
                _bind(qm, name, handler)
            sm = SchedulerManager(Queries(AsyncpgDriver(schedule_conn)))
            for name, expression in self.schedules.items():
                _schedule(sm, name, expression, self.jobs[name])
            self._managers = [qm, sm]
            if self._stopping.is_set():
                return
            log.info("worker_started", jobs=sorted(self.jobs), schedules=sorted(self.schedules))
            await asyncio.gather(
                qm.run(dequeue_timeout=timedelta(seconds=5), batch_size=10),
                sm.run() if self.schedules else asyncio.sleep(0),
            )
        finally:
            for conn in self._connections:
                with suppress(Exception):
                    await conn.close()
            log.info("worker_stopped")

    def stop(self) -> None:
        self._stopping.set()
        for loop in self._loops:
            loop.stop()
        for manager in self._managers:
            manager.shutdown.set()
