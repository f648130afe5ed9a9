"""Webhook delivery: deliveries per second from one worker process, and commit-to-delivery latency.

    uv run python bench/webhooks.py [--events 20000] [--rate 1000] [--seconds 10] [--url ...]

1. Creates its own database on the server of --url (default: KEHU_TEST_DATABASE_URL, else
   postgresql://postgres@127.0.0.1:5432/postgres), migrates it and registers one endpoint (every
   event type) pointing at a receiver this script serves on 127.0.0.1 (uvicorn; it answers 204 and
   notes when each `webhook-id` first arrives; one in 100 deliveries is verified with the
   `standardwebhooks` library, and a failed verification stops the run).
2. Throughput: writes --events events over --customers customers (1,000 per transaction), then
   starts one `kehu worker` process (the event sequencer and the delivery loop, as deployed) and
   measures deliveries per second between the 10th and 90th percentile of arrivals.
3. Latency: writes --rate events per second for --seconds (a transaction every 20 ms) while that
   worker runs, and measures from each COMMIT's return to the event's first arrival.
4. Stops the worker and drops the database. Everything is bounded by timeouts.

The writer, the receiver, the worker and PostgreSQL share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from standardwebhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The receiver runs on this host: allowed for the run, as an on-premise install would allow it.
os.environ["KEHU_WEBHOOK_ALLOW_NETS"] = "127.0.0.0/8"
os.environ["KEHU_WEBHOOK_ALLOW_HTTP"] = "true"

from app.core import clock  # noqa: E402
from app.core.auth import Caller  # noqa: E402
from app.core.ids import new_id  # noqa: E402
from app.db import engine as db  # noqa: E402
from app.db.migrations import upgrade  # noqa: E402
from app.events import repository  # noqa: E402
from app.webhooks import service as webhooks  # noqa: E402
from app.webhooks.schemas import WebhookEndpointCreate  # noqa: E402
from bench.event_latency import create_database, drop_database, percentile  # noqa: E402


class Receiver:
    """Notes the first arrival of each webhook-id; verifies a sample of deliveries."""

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}
        self.requests = 0
        self.secret = ""
        self.failed_verification: str | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.perf_counter()
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        msg_id = headers.get("webhook-id", "")
        self.requests += 1
        self.first_seen.setdefault(msg_id, now)
        if self.requests % 100 == 1:
            try:
                Webhook(self.secret).verify(body, headers)
            except Exception as exc:  # reported, and the run fails
                self.failed_verification = f"{type(exc).__name__}: {exc}"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def write_events(customers: list[uuid.UUID], count: int, rng: random.Random) -> list[str]:
    """``count`` events of random customers in one transaction; their ids once it committed."""
    ids = [new_id() for _ in range(count)]
    async with db.unit_of_work() as conn:
        for event_id in ids:
            await repository.append(
                conn,
                event_id=event_id,
                type="customer.updated",
                customer_id=rng.choice(customers),
                occurred_at=clock.now(),
                data={"n": 1},
                changes=None,
            )
    return [str(i) for i in ids]


def start_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, "KEHU_DATABASE_URL": url, "KEHU_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


async def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} (after {seconds:.0f} s)")
        await asyncio.sleep(0.01)


async def run(args: argparse.Namespace) -> int:
    name, url = await create_database(args.url, "kehu_bench_webhooks")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    receiver = Receiver()
    server = uvicorn.Server(
        uvicorn.Config(
            receiver,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            http="httptools",
            timeout_keep_alive=60,
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    worker: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, url)
        db.configure(db.create_engine(url, pool_size=4))
        caller = Caller(uuid.uuid4(), "bench", frozenset({"admin"}))
        async with db.unit_of_work() as conn:
            _, receiver.secret = await webhooks.create_endpoint(
                conn,
                caller,
                WebhookEndpointCreate(url=f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"),
            )
        customers = [uuid.uuid4() for _ in range(args.customers)]

        # Throughput: a backlog of events, then one worker.
        rng = random.Random(1)
        backlog: list[str] = []
        while len(backlog) < args.events:
            backlog += await write_events(customers, min(1000, args.events - len(backlog)), rng)
        worker = start_worker(url)
        await wait_for(
            lambda: len(receiver.first_seen) >= len(backlog), 600, "the backlog was not delivered"
        )
        arrivals = sorted(receiver.first_seen[i] for i in backlog)
        low, high = arrivals[len(arrivals) // 10], arrivals[len(arrivals) * 9 // 10]
        rate = (len(arrivals) * 8 // 10) / (high - low)
        print(f"endpoint 1, customers {args.customers}, worker processes 1")
        print(f"throughput: {len(backlog):,} deliveries, {rate:,.0f} deliveries/s (p10-p90)")

        # Latency at a steady rate.
        committed: dict[str, float] = {}
        per_tick = max(1, round(args.rate * 0.02))
        started = time.perf_counter()
        tick = 0
        while time.perf_counter() - started < args.seconds:
            ids = await write_events(customers, per_tick, rng)
            now = time.perf_counter()
            for event_id in ids:
                committed[event_id] = now
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * 0.02 - time.perf_counter()))
        written_in = time.perf_counter() - started
        await wait_for(
            lambda: all(i in receiver.first_seen for i in committed), 120, "events not delivered"
        )
        latencies = [max(0.0, receiver.first_seen[i] - t) * 1000 for i, t in committed.items()]
        print(
            f"latency at {len(committed) / written_in:,.0f} events/s for {written_in:.0f} s "
            f"({len(committed):,} events): commit-to-delivery ms p50 "
            f"{percentile(latencies, 0.5):.0f}  p99 {percentile(latencies, 0.99):.0f}  "
            f"max {max(latencies):.0f}"
        )
        duplicates = receiver.requests - len(receiver.first_seen)
        print(f"requests {receiver.requests:,}, duplicates {duplicates}")
        if receiver.failed_verification:
            print(f"verification FAILED: {receiver.failed_verification}")
            return 1
        return 0
    finally:
        if worker is not None:
            with suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        server.should_exit = True
        with suppress(Exception):
            await asyncio.wait_for(serving, 10)
        await db.dispose()
        await drop_database(args.url, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("KEHU_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
        help="A PostgreSQL server URL (the database part is replaced).",
    )
    parser.add_argument("--events", type=int, default=20_000, help="The throughput backlog.")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000, help="Events per second (latency).")
    parser.add_argument("--seconds", type=float, default=10, help="How long to write at --rate.")
    args = parser.parse_args()
    return uvloop.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
