"""Event feed latency: how long after its commit an event shows up in the feed, with a position.

    uv run python bench/event_latency.py [--writers 8] [--seconds 10] [--url postgresql://...]

1. Creates its own database on the server of --url (default: KEHU_TEST_DATABASE_URL, else
   postgresql://postgres@127.0.0.1:5432/postgres) and migrates it to head.
2. Starts the event sequencer in a separate process (as the app or `kehu worker` would run it;
   `--in-process` runs it on this event loop instead).
3. Writers append customer events (each in its own transaction, through the app's repository, so the
   per-customer sequence lock is real) for --seconds or until --events; the commit time of each is
   taken when its COMMIT returns. A reader polls the feed query (`position > last ORDER BY
   position`) every --poll-ms and notes when each event first appears.
4. Prints p50 / p99 / max commit-to-visible latency and the write throughput, then stops the
   sequencer and drops the database.

Writers, reader and (with --in-process) sequencer share one Python process and the machine's cores,
so the figures include their scheduling delays.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information (as in app/)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core import clock  # noqa: E402
from app.core.ids import new_id  # noqa: E402
from app.db import engine as db  # noqa: E402
from app.db.migrations import upgrade  # noqa: E402
from app.events import repository  # noqa: E402
from app.events.sequencer import Sequencer, stop_and_wait  # noqa: E402

FEED = "SELECT id, position FROM events WHERE position > $1 ORDER BY position LIMIT 1000"
SEQUENCER_SCRIPT = (
    "import asyncio, sys\n"
    "from app.events.sequencer import Sequencer\n"
    "asyncio.run(Sequencer(sys.argv[1]).run())\n"
)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql", path=f"/{name}"))


async def create_database(server: str, prefix: str) -> tuple[str, str]:
    """A new, empty database on ``server`` named ``<prefix>_<random>``: (name, URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(with_database(server, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, with_database(server, name)


async def drop_database(server: str, name: str) -> None:
    admin = await asyncpg.connect(with_database(server, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def warm_up(url: str) -> int:
    """Wait until the sequencer runs: one event, written before measuring, gets its position."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO events (id, type, occurred_at, data) VALUES ($1, 'bench.warm_up', now(), "
            "'{}')",
            new_id(),
        )
        for _ in range(600):
            position = await conn.fetchval("SELECT max(position) FROM events")
            if position is not None:
                await asyncio.sleep(0.2)
                return int(position)
            await asyncio.sleep(0.05)
        raise RuntimeError("the sequencer did not start within 30 s")
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> int:
    server = args.url
    name, url = await create_database(server, "kehu_bench_events")
    proc: subprocess.Popen[bytes] | None = None
    sequencer: Sequencer | None = None
    sequencer_task: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(upgrade, url)
        db.configure(db.create_engine(url, pool_size=args.writers + 1))
        if args.in_process:
            sequencer = Sequencer(url)
            sequencer_task = asyncio.create_task(sequencer.run())
        else:
            proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
                [sys.executable, "-c", SEQUENCER_SCRIPT, url],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        customers = [uuid.uuid4() for _ in range(args.customers)]
        committed: dict[uuid.UUID, float] = {}
        seen: dict[uuid.UUID, float] = {}
        stop_writing, all_written = asyncio.Event(), asyncio.Event()
        rng = random.Random(1)

        async def writer() -> None:
            while not stop_writing.is_set() and len(committed) < args.events:
                event_id = new_id()
                async with db.unit_of_work() as session:
                    await repository.append(
                        session,
                        event_id=event_id,
                        type="bench.event",
                        customer_id=rng.choice(customers),
                        occurred_at=clock.now(),
                        data={"n": len(committed)},
                        changes=None,
                    )
                committed[event_id] = time.perf_counter()

        async def reader(last: int) -> None:
            conn = await asyncpg.connect(url)
            try:
                while True:
                    rows = await conn.fetch(FEED, last)
                    now = time.perf_counter()
                    for row in rows:
                        seen.setdefault(row["id"], now)
                    if rows:
                        last = rows[-1]["position"]
                    if all_written.is_set() and all(i in seen for i in committed):
                        return
                    if not rows or len(rows) < 1000:
                        await asyncio.sleep(args.poll_ms / 1000)
            finally:
                await conn.close()

        reading = asyncio.create_task(reader(await warm_up(url)))
        started = time.perf_counter()
        writers = [asyncio.create_task(writer()) for _ in range(args.writers)]
        await asyncio.wait(writers, timeout=args.seconds)
        stop_writing.set()
        await asyncio.gather(*writers)
        all_written.set()
        elapsed = time.perf_counter() - started
        await asyncio.wait_for(reading, timeout=60)

        # A reader can see an event a moment before its writer's COMMIT call returns: 0 then.
        latencies = [max(0.0, seen[i] - committed[i]) * 1000 for i in committed]
        count = len(latencies)
        print(
            f"writers {args.writers}, customers {args.customers}, poll {args.poll_ms} ms, "
            f"sequencer {'in process' if args.in_process else 'separate process'}"
        )
        print(f"events {count} in {elapsed:.1f} s: {count / elapsed:,.0f} events/s written")
        print(
            f"commit-to-visible latency ms: p50 {percentile(latencies, 0.5):.1f}  "
            f"p99 {percentile(latencies, 0.99):.1f}  max {max(latencies):.1f}  "
            f"mean {statistics.fmean(latencies):.1f}"
        )
        conn = await asyncpg.connect(url)
        try:
            unstamped = await conn.fetchval("SELECT count(*) FROM events WHERE position IS NULL")
            positions = await conn.fetchval("SELECT max(position) FROM events")
        finally:
            await conn.close()
        print(f"unstamped at the end {unstamped}, last position {positions} (1 warm-up event)")
        return 0
    finally:
        if sequencer is not None and sequencer_task is not None:
            await stop_and_wait(sequencer, sequencer_task)
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        await db.dispose()
        await drop_database(server, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("KEHU_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
        help="A PostgreSQL server URL (the database part is replaced).",
    )
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--events", type=int, default=20_000, help="Stop writing after this many.")
    parser.add_argument("--poll-ms", type=float, default=5)
    parser.add_argument("--in-process", action="store_true", help="Sequencer on this event loop.")
    args = parser.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
