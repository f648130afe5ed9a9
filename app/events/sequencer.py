"""The event sequencer: stamps committed events with feed positions, in an order consumers can trust.

Writers insert events with ``position`` NULL. A pass (``repository.stamp_pass``) is one transaction
that takes a fixed advisory lock (so passes in every process run one at a time), reads the committed
unstamped rows, and gives them the next positions after ``event_feed_state.last_position``, which the
same transaction advances. A reader paging ``position > cursor`` therefore never skips a row: a row is
stamped only after its transaction committed, and always above every position stamped before it.

Why per-customer order holds without gaps: a customer's events are numbered under the row lock on
``customer_event_sequences``, and a lock waiter proceeds only after the holder's commit is visible, so
sequence k+1 always commits after sequence k. A snapshot that sees a commit therefore also sees every
earlier commit of the same customer: the unstamped rows a pass can see form, per customer, a run that
directly follows the stamped ones. A pass stamps, per customer, only a prefix of that run and hands
its positions out in sequence order, so positions increase with ``sequence`` and no event is left
behind a later one of the same customer.

The runner listens on ``kehu_events`` (a statement-level trigger NOTIFYs it; NOTIFY is delivered at
commit) and also polls every second. It survives the database being down or not migrated yet (logs,
backs off, retries) and several may run at once.
"""

import asyncio
import contextlib
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog

from app.core import metrics
from app.events import repository

log = structlog.get_logger("kehu.events.sequencer")

CHANNEL = "kehu_events"
BATCH_SIZE = 1000


async def catch_up(conn: asyncpg.Connection, batch_size: int = BATCH_SIZE) -> int:
    """Run passes until one does not fill its batch; rows stamped in all.

    A full batch that stamps nothing (every row in it waits for an older event of its customer that
    sorts later by time, outside the batch) is retried with a doubled batch: once the batch holds
    every unstamped row, nothing in it can wait for a row outside it, so passes always progress.
    """
    total, size = 0, batch_size
    while True:
        stamped, batched = await repository.stamp_pass(conn, size)
        total += stamped
        if batched < size:
            return total
        if stamped == 0:
            size *= 2
            log.warning("event_sequencer_batch_blocked", retry_batch_size=size)
        else:
            size = batch_size


class Sequencer:
    """Runs passes on notification and every ``poll_interval`` seconds until ``stop()``."""

    def __init__(
        self,
        dsn: str,
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = 1.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.stamped = 0
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._backoff = 0.2

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Never raises (but for cancellation): connection or schema errors are logged and retried."""
        log.info("event_sequencer_started")
        while not self._stopping.is_set():
            try:
                await self._run_connected()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down, not migrated, connection lost, ...
                log.warning(
                    "event_sequencer_unavailable",
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=self._backoff,
                )
                await self._sleep(self._backoff)
                self._backoff = min(self._backoff * 2, self.max_backoff)
        log.info("event_sequencer_stopped", stamped=self.stamped)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _run_connected(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, timeout=5, server_settings={"application_name": "kehu-sequencer"}
        )
        try:
            await conn.add_listener(CHANNEL, self._notified)
            while not self._stopping.is_set():
                # Cleared before the pass: a commit notified during the pass triggers another one.
                self._wake.clear()
                stamped = await catch_up(conn, self.batch_size)
                self.stamped += stamped
                metrics.EVENTS_STAMPED.inc(stamped)
                self._backoff = 0.2
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)
            if not conn.is_closed():
                conn.terminate()


async def stop_and_wait(sequencer: Sequencer, task: "asyncio.Task[None]") -> None:
    """Stop a running sequencer and wait for its task; cancel it if it does not finish in 10 s."""
    sequencer.stop()
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
