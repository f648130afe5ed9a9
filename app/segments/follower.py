"""The follower: keeps dynamic segments current as data changes, one customer at a time.

Every change a rule can read (a profile, an order, a refund, an interaction) writes its event in
its own transaction (the outbox); the follower reads the stamped events in feed order, after the
position it stored, and compares their customers with every dynamic segment's rule, in batches:
a customer changed ten times in a second is re-evaluated once. It writes nothing into the
transactions of the writers (an order costs no more with segments than without), and its position
moves in the same transaction as the memberships it changed, so a crash repeats a batch, never
skips one (a repeated batch moves no one: re-evaluation is idempotent). What moves with time alone
(a window of days, metrics after an analytics refresh) is caught by the scheduled full refresh.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

from app.db import unit_of_work
from app.segments import service

log = structlog.get_logger("kehu.segments")


@dataclass
class Follower:
    batch_size: int = 1_000
    poll_interval: float = 0.25
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Never raises (but for cancellation): database errors are logged and retried."""
        log.info("segment_follower_started")
        while not self._stopping.is_set():
            try:
                moved = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down or not migrated: retry
                log.warning("segment_follower_unavailable", error=f"{type(exc).__name__}")
                await self._sleep(1.0)
                continue
            if moved is None:
                await self._sleep(self.poll_interval)
        log.info("segment_follower_stopped")

    async def step(self) -> tuple[int, int] | None:
        async with unit_of_work() as conn:
            return await service.follow(conn, batch_size=self.batch_size)

    async def catch_up(self) -> None:
        """Until every stamped event has been followed (tests, and a worker's shutdown)."""
        while await self.step() is not None:
            pass

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
