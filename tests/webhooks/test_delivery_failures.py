"""When receivers fail: the retry schedule, 410, 429/503 with Retry-After, redirects, a receiver that
never answers, and the 5-day disable. Real HTTP to receivers on 127.0.0.1; the clock is moved by
time-machine (nothing sleeps for simulated hours)."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pytest
import time_machine
from sqlalchemy import select, text

from app.core import clock
from app.db import read_connection
from app.webhooks import delivery
from app.webhooks.repository import attempts, deliveries
from tests.fixtures.events import wait_stamped
from tests.fixtures.factories import create_customer
from tests.fixtures.receiver import (
    Received,
    Receiver,
    answering,
    register_endpoint,
    running_receiver,
)

pytestmark = pytest.mark.usefixtures("allow_local_targets")


async def _deliveries() -> list[Any]:
    async with read_connection() as conn:
        query = select(deliveries).order_by(deliveries.c.event_position)
        return list((await conn.execute(query)).all())


async def _attempts() -> list[Any]:
    async with read_connection() as conn:
        return list((await conn.execute(select(attempts).order_by(attempts.c.attempted_at))).all())


async def _endpoint(client: httpx.AsyncClient, endpoint_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/webhooks/endpoints/{endpoint_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _disabled_events() -> list[Any]:
    async with read_connection() as conn:
        query = text("SELECT data FROM events WHERE type = 'webhook.endpoint_disabled'")
        return [row.data for row in (await conn.execute(query)).all()]


async def test_retry_schedule_then_failure(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    receiver.answer = answering(500, body=b"down for maintenance")
    await register_endpoint(client, receiver)
    with time_machine.travel(clock.now(), tick=False) as traveller:
        await create_customer(client)
        await wait_stamped()
        waits: list[timedelta] = []
        for _ in range(delivery.MAX_ATTEMPTS):
            assert await delivery.deliver_due(sender) == 1
            (row,) = await _deliveries()
            if row.status == "pending":
                waits.append(row.next_attempt_at - clock.now())
                # Not a moment early: nothing is due before its time.
                traveller.move_to(row.next_attempt_at - timedelta(milliseconds=10))
                assert await delivery.deliver_due(sender) == 0
                traveller.move_to(row.next_attempt_at)
        assert await delivery.deliver_due(sender) == 0
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 8, 500)
    assert len(waits) == len(delivery.RETRY_SCHEDULE) == 7
    for wait, step in zip(waits, delivery.RETRY_SCHEDULE, strict=True):
        assert step * 0.9 <= wait <= step * 1.1, (wait, step)
    assert len(receiver.requests) == 8
    assert len({r.webhook_id for r in receiver.requests}) == 1  # stable across retries
    assert all(r.verified for r in receiver.requests)
    logged = await _attempts()
    assert [a.outcome for a in logged] == ["http_error"] * 8
    assert logged[0].response_excerpt == "down for maintenance"


async def test_410_disables_the_endpoint_at_once(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    receiver.answer = answering(410)
    endpoint = await register_endpoint(client, receiver)
    await create_customer(client)
    await wait_stamped()
    assert await delivery.deliver_due(sender) == 1
    (row,) = await _deliveries()
    assert row.status == "failed"
    after = await _endpoint(client, endpoint["id"])
    assert after["enabled"] is False
    assert "410" in after["disabled_reason"]
    assert [e["endpoint_id"] for e in await _disabled_events()] == [endpoint["id"]]
    # Nothing more goes to it.
    await create_customer(client)
    await wait_stamped()
    assert await delivery.deliver_due(sender) == 0
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "120", timedelta(seconds=120)),
        (503, "7", timedelta(seconds=7)),
        (429, "86400", timedelta(hours=1)),  # capped
        (503, "Wed, 21 Oct 2099 07:28:00 GMT", timedelta(hours=1)),  # a date, capped
    ],
)
async def test_429_and_503_honour_retry_after(
    client: httpx.AsyncClient,
    receiver: Receiver,
    sender: httpx.AsyncClient,
    status: int,
    retry_after: str,
    expected: timedelta,
) -> None:
    receiver.answer = answering(status, {"Retry-After": retry_after})
    await register_endpoint(client, receiver)
    with time_machine.travel(clock.now(), tick=False):
        await create_customer(client)
        await wait_stamped()
        assert await delivery.deliver_due(sender) == 1
        (row,) = await _deliveries()
        assert row.status == "pending"
        assert row.next_attempt_at - clock.now() == expected


async def test_a_redirect_is_a_failure_and_not_followed(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    async with running_receiver() as elsewhere:
        receiver.answer = answering(307, {"Location": elsewhere.url})
        await register_endpoint(client, receiver)
        await create_customer(client)
        await wait_stamped()
        assert await delivery.deliver_due(sender) == 1
        assert elsewhere.requests == []
    (row,) = await _deliveries()
    assert (row.status, row.last_status_code) == ("pending", 307)
    assert "not followed" in row.last_error
    assert [a.outcome for a in await _attempts()] == ["redirect"]


async def test_a_receiver_that_never_answers_is_abandoned_at_15_s(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    released = asyncio.Event()

    async def hang(_: Received) -> tuple[int, dict[str, str], bytes]:
        await released.wait()
        return 200, {}, b""

    receiver.answer = hang
    await register_endpoint(client, receiver)
    await create_customer(client)
    await wait_stamped()
    try:
        assert await delivery.deliver_due(sender) == 1
    finally:
        released.set()
    (attempt,) = await _attempts()
    assert attempt.outcome == "timeout"
    assert 15_000 <= attempt.latency_ms < 16_500
    (row,) = await _deliveries()
    assert row.status == "pending"  # retried like any failure


async def test_an_endpoint_failing_for_5_days_is_disabled(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    receiver.answer = answering(500)
    endpoint = await register_endpoint(client, receiver)
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        for day in range(5):
            traveller.move_to(start + timedelta(days=day))
            await create_customer(client)
            await wait_stamped()
            await delivery.deliver_due(sender)
            assert (await _endpoint(client, endpoint["id"]))["enabled"] is True, day
        traveller.move_to(start + timedelta(days=4, hours=23, minutes=59))
        await create_customer(client)
        await wait_stamped()
        await delivery.deliver_due(sender)
        assert (await _endpoint(client, endpoint["id"]))["enabled"] is True
        assert await _disabled_events() == []
        traveller.move_to(start + timedelta(days=5, minutes=1))
        await create_customer(client)
        await wait_stamped()
        await delivery.deliver_due(sender)
    after = await _endpoint(client, endpoint["id"])
    assert after["enabled"] is False
    assert "5 days" in after["disabled_reason"]
    assert [e["endpoint_id"] for e in await _disabled_events()] == [endpoint["id"]]


async def test_one_success_restarts_the_5_days(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    receiver.answer = answering(500)
    endpoint = await register_endpoint(client, receiver)
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        await create_customer(client)
        await wait_stamped()
        await delivery.deliver_due(sender)
        traveller.move_to(start + timedelta(days=3))
        receiver.answer = answering(204)
        await create_customer(client)
        await wait_stamped()
        await delivery.deliver_due(sender)
        receiver.answer = answering(500)
        traveller.move_to(start + timedelta(days=5, minutes=1))
        await create_customer(client)
        await wait_stamped()
        await delivery.deliver_due(sender)
    assert (await _endpoint(client, endpoint["id"]))["enabled"] is True
