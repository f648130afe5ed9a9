"""Delivery through an outage and through a killed worker: nothing lost, per-customer order kept,
healthy customers not held back, duplicates only as resends of the same ``webhook-id``."""

import asyncio
import os
import signal
import subprocess
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import time_machine
from sqlalchemy import func, select

from app.core import clock
from app.db import read_connection, unit_of_work
from app.events import service as events
from app.webhooks import delivery
from app.webhooks.repository import deliveries
from tests.fixtures.events import wait_stamped
from tests.fixtures.processes import start_kehu
from tests.fixtures.receiver import Received, Receiver, register_endpoint

pytestmark = pytest.mark.usefixtures("allow_local_targets")
ROOT = Path(__file__).resolve().parents[2]


async def _record_events(customers: list[uuid.UUID], per_customer: int) -> None:
    """``per_customer`` events for each customer, interleaved across customers."""
    async with unit_of_work() as conn:
        for n in range(per_customer):
            for customer_id in customers:
                await events.record(
                    conn,
                    "customer.updated",
                    customer_id=customer_id,
                    data={"id": str(customer_id), "n": n},
                )


async def _pending() -> int:
    async with read_connection() as conn:
        query = select(func.count()).where(deliveries.c.status == "pending")
        return int((await conn.execute(query.select_from(deliveries))).scalar_one())


async def _next_retry() -> Any:
    """When the next retry is due (later deliveries queued behind it show an earlier time)."""
    async with read_connection() as conn:
        query = select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.status == "pending", deliveries.c.next_attempt_at > clock.now()
        )
        return (await conn.execute(query)).scalar_one()


def _sequences_by_customer(received: list[Received]) -> dict[str, list[int]]:
    """The sequences each customer's 2xx-answered deliveries arrived in."""
    seen: dict[str, list[int]] = defaultdict(list)
    for request in received:
        body = request.json
        seen[body["customer_id"]].append(body["sequence"])
    return seen


@pytest.mark.parametrize("down_for", [50, 100], ids=["half-the-customers", "everyone"])
async def test_an_hour_long_outage_loses_nothing_and_holds_back_no_healthy_customer(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient, down_for: int
) -> None:
    customers = [uuid.uuid4() for _ in range(100)]
    failing = {str(c) for c in customers[:down_for]}
    outage_ends = clock.now() + timedelta(hours=1)
    answered_ok: list[Received] = []

    async def partner(request: Received) -> tuple[int, dict[str, str], bytes]:
        # The receiver is down for the hour, for some customers (a shard) or for all.
        if request.json["customer_id"] in failing and clock.now() < outage_ends:
            return 503, {}, b"shard unavailable"
        answered_ok.append(request)
        return 200, {}, b""

    receiver.answer = partner
    await register_endpoint(client, receiver)
    with time_machine.travel(clock.now(), tick=False) as traveller:
        await _record_events(customers, per_customer=10)
        await wait_stamped()
        # Without the clock moving, every healthy customer's 10 events go out, in order.
        for _ in range(10):
            await delivery.deliver_due(sender, limit=1000)
        healthy = _sequences_by_customer(answered_ok)
        assert set(healthy) == {str(c) for c in customers[down_for:]}
        assert all(seqs == list(range(1, 11)) for seqs in healthy.values())
        # Through the outage and after it, moving the clock to each next retry.
        rounds = 0
        while await _pending():
            rounds += 1
            assert rounds < 200, "deliveries never finished"
            if not await delivery.deliver_due(sender, limit=1000):
                # Past the jitter of the whole step, so its retries go out together.
                due = await _next_retry()
                traveller.move_to(due + (due - clock.now()) * 0.25)
        assert clock.now() > outage_ends
    delivered = _sequences_by_customer(answered_ok)
    assert len(answered_ok) == 1000  # 0 lost, none twice
    assert {c: seqs for c, seqs in delivered.items() if seqs != list(range(1, 11))} == {}
    assert all(r.verified for r in receiver.requests)
    async with read_connection() as conn:
        statuses = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        assert dict((await conn.execute(statuses)).all()) == {"succeeded": 1000}


def _worker(database_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": database_url,
        "KEHU_WEBHOOK_ALLOW_NETS": "127.0.0.0/8",
        "KEHU_WEBHOOK_ALLOW_HTTP": "true",
        "KEHU_WEBHOOK_LEASE_SECONDS": "3",
        "KEHU_RUN_SEQUENCER": "false",  # the test's app runs one
        "KEHU_LOG_LEVEL": "warning",
    }
    return start_kehu("worker", env=env, own_session=True)


async def _until(condition: Any, seconds: float, what: str) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110 - polls the database and a list
            await asyncio.sleep(0.05)
    assert await condition(), what


async def test_a_worker_killed_mid_delivery_loses_nothing(
    client: httpx.AsyncClient, receiver: Receiver, database_url: str
) -> None:
    async def slow_ok(_: Received) -> tuple[int, dict[str, str], bytes]:
        await asyncio.sleep(0.01)
        return 200, {}, b""

    receiver.answer = slow_ok
    await register_endpoint(client, receiver)
    customers = [uuid.uuid4() for _ in range(100)]
    await _record_events(customers, per_customer=5)
    await wait_stamped()

    async def some_received() -> bool:
        return len(receiver.requests) >= 100

    async def all_succeeded() -> bool:
        async with read_connection() as conn:
            query = select(func.count()).where(deliveries.c.status == "succeeded")
            return int((await conn.execute(query.select_from(deliveries))).scalar_one()) == 500

    worker = _worker(database_url)
    try:
        await _until(some_received, 60, "the first worker delivered nothing")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        killed_at = len(receiver.requests)
        assert killed_at < 500, "the worker finished before it was killed"
        worker = _worker(database_url)
        await _until(all_succeeded, 90, "not everything was delivered after the restart")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
    assert all(r.verified for r in receiver.requests)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for request in receiver.requests:
        bodies[request.webhook_id].add(request.body)
    assert len(bodies) == 500  # every event arrived
    assert all(len(b) == 1 for b in bodies.values())  # a duplicate is the same message resent
    order = _sequences_by_customer(receiver.requests)
    for sequences in order.values():
        # Resends may repeat a sequence; they never go back before one already passed on.
        firsts = list(dict.fromkeys(sequences))
        assert firsts == sorted(firsts) == list(range(1, 6))
