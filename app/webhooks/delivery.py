"""Delivering the event log to webhook endpoints (Standard Webhooks), run by the worker.

Three steps, each its own short transaction, so any number of workers may run and any may die:

1. **Dispatch**: the next stamped events (by feed ``position``) become one ``pending`` delivery per
   matching endpoint, and the dispatch position advances, in one statement.
2. **Claim**: due deliveries that head their (endpoint, customer) queue get a lease. A customer's
   later event waits until the earlier one succeeded or gave up; other customers flow.
3. **Send and settle**: each claimed delivery is POSTed (signed, ``webhook-id`` = event id) in a
   task of its own, many in flight; results are written in batches: success, a retry at the next
   step of ``RETRY_SCHEDULE`` (±10 % jitter, or the receiver's ``Retry-After`` on 429/503, at most
   an hour), or failure once the schedule is spent. 410 Gone, or 5 days of nothing but failures,
   turns the endpoint off with a ``webhook.endpoint_disabled`` event.

A worker killed mid-send leaves leases that expire after ``LEASE``; the delivery is then sent again
with the same ``webhook-id``, which receivers use to drop duplicates (at-least-once).
"""

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2 as httpx
import structlog
from standardwebhooks import Webhook

from app.core import clock, metrics
from app.core.auth import Caller
from app.core.ids import new_id
from app.db import Connection, unit_of_work
from app.events import service as events
from app.events.schemas import EventOut
from app.webhooks import repository, ssrf

log = structlog.get_logger("kehu.webhooks")

RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = 1 + len(RETRY_SCHEDULE)
JITTER = 0.1
TIMEOUT_SECONDS = 15.0
RETRY_AFTER_CAP = timedelta(hours=1)
DISABLE_AFTER = timedelta(days=5)
LEASE = timedelta(seconds=60)
EXCERPT_BYTES = 1024
USER_AGENT = "Kehu-Webhooks/1"

# Defined with every other metric (app/core/metrics.py).
ATTEMPTS = metrics.WEBHOOK_ATTEMPTS
LAG = metrics.WEBHOOK_LAG
IN_FLIGHT = metrics.WEBHOOK_IN_FLIGHT
BACKLOG = metrics.WEBHOOK_BACKLOG

_WITH_PII = Caller(uuid.UUID(int=0), "webhooks", frozenset({"pii:read"}))
_WITHOUT_PII = Caller(uuid.UUID(int=0), "webhooks", frozenset())


@dataclass(frozen=True)
class Attempt:
    """What one HTTP attempt of a delivery gave."""

    outcome: str  # success, http_error, timeout, connection_error, redirect, refused
    status_code: int | None
    latency_ms: int
    excerpt: str | None = None
    error: str | None = None
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == "success"


def signing_secrets(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> tuple[str, ...]:
    """The secrets a delivery is signed with: the previous one too while a rotation's overlap
    lasts."""
    if previous and previous_expires_at and previous_expires_at > now:
        return (secret, previous)
    return (secret,)


@dataclass(frozen=True)
class Claimed:
    """A leased delivery with what it takes to send it."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    customer_id: uuid.UUID | None
    attempts: int
    url: str
    secrets: tuple[str, ...]
    event: EventOut
    include_pii: bool

    @classmethod
    def from_row(cls, row: Any, now: datetime) -> "Claimed":
        secrets = signing_secrets(
            row.secret, row.previous_secret, row.previous_secret_expires_at, now
        )
        event = EventOut.from_stored(
            {
                "id": row.event_id,
                "position": row.position,
                "type": row.event_type,
                "occurred_at": row.occurred_at,
                "customer_id": row.customer_id,
                "sequence": row.sequence,
                "data": row.data,
                "changes": row.changes,
            }
        )
        return cls(
            row.id,
            row.endpoint_id,
            row.queue_customer_id,
            row.attempts,
            row.url,
            secrets,
            event,
            row.include_pii,
        )


def payload(event: EventOut, include_pii: bool) -> str:
    """The event envelope of docs/webhooks.md, redacted as the event feed is for a key without
    ``pii:read`` unless the endpoint's creator had it."""
    shown = events.redact(event, _WITH_PII if include_pii else _WITHOUT_PII)
    body = shown.model_dump(mode="json", exclude={"position"})
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def signed_headers(
    msg_id: str, when: datetime, body: str, secrets: Sequence[str]
) -> dict[str, str]:
    """Standard Webhooks headers; during a secret rotation, one signature per valid secret."""
    signatures = " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def _excerpt(body: bytes, secrets: Sequence[str]) -> str | None:
    if not body:
        return None
    text = body[:EXCERPT_BYTES].decode("utf-8", errors="replace").replace("\x00", "")
    for secret in secrets:  # a receiver echoing our headers must not put a secret in the log
        text = text.replace(secret, "[secret]")
    return text[:EXCERPT_BYTES]


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        wait = timedelta(seconds=int(value[:7]))
    else:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return max(timedelta(0), min(wait, RETRY_AFTER_CAP))


async def send(client: httpx.AsyncClient, claimed: Claimed, now: datetime) -> Attempt:
    """POST one delivery; never raises (but for cancellation)."""
    body = payload(claimed.event, claimed.include_pii)
    headers = signed_headers(str(claimed.event.id), now, body, claimed.secrets)
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            response = await client.post(claimed.url, content=body.encode(), headers=headers)
    except TimeoutError:
        return Attempt("timeout", None, elapsed(), error=f"no answer within {TIMEOUT_SECONDS:g} s")
    except ssrf.TargetRefused as refused:
        return Attempt("refused", None, elapsed(), error=str(refused)[:500])
    except httpx.HTTPError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssrf.TargetRefused):
            return Attempt("refused", None, elapsed(), error=str(cause)[:500])
        return Attempt(
            "connection_error", None, elapsed(), error=f"{type(exc).__name__}: {exc}"[:500]
        )
    excerpt = _excerpt(response.content, claimed.secrets)
    code = response.status_code
    if 200 <= code < 300:
        return Attempt("success", code, elapsed(), excerpt)
    if 300 <= code < 400:
        where = response.headers.get("location", "")[:200]
        error = f"redirect to {where!r} not followed: register the final URL"
        return Attempt("redirect", code, elapsed(), excerpt, error)
    retry_after = _retry_after(response, now) if code in (429, 503) else None
    return Attempt("http_error", code, elapsed(), excerpt, f"HTTP {code}", retry_after)


def next_state(attempts_before: int, attempt: Attempt, now: datetime) -> dict[str, Any]:
    """A delivery's status and next attempt after ``attempt`` (its ``attempts_before + 1``-th)."""
    if attempt.succeeded:
        return {"status": "succeeded", "next_attempt_at": now, "delivered_at": now}
    made = attempts_before + 1
    if attempt.status_code == 410 or made >= MAX_ATTEMPTS:
        return {"status": "failed", "next_attempt_at": now, "delivered_at": None}
    if attempt.retry_after is not None:
        wait = attempt.retry_after
    else:
        step = RETRY_SCHEDULE[made - 1]
        wait = step * random.uniform(1 - JITTER, 1 + JITTER)
    return {"status": "pending", "next_attempt_at": now + wait, "delivered_at": None}


def attempt_row(delivery_id: uuid.UUID, attempted_at: datetime, attempt: Attempt) -> dict[str, Any]:
    """The delivery log's row of one attempt."""
    return {
        "id": new_id(),
        "delivery_id": delivery_id,
        "attempted_at": attempted_at,
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response_excerpt": attempt.excerpt,
        "error": attempt.error,
    }


@dataclass
class _Settled:
    claimed: Claimed
    attempt: Attempt
    attempted_at: datetime


async def settle(results: Sequence[_Settled]) -> None:
    """Write a batch of attempts and their consequences in one transaction."""
    if not results:
        return
    now = clock.now()
    settled_rows, attempt_rows = [], []
    by_endpoint: dict[uuid.UUID, list[_Settled]] = {}
    for result in results:
        state = next_state(result.claimed.attempts, result.attempt, result.attempted_at)
        settled_rows.append(
            {
                "b_id": result.claimed.delivery_id,
                "b_status": state["status"],
                "b_next_attempt_at": state["next_attempt_at"],
                "b_attempted_at": result.attempted_at,
                "b_status_code": result.attempt.status_code,
                "b_error": result.attempt.error,
                "b_delivered_at": state["delivered_at"],
                "b_queue": (result.claimed.endpoint_id, result.claimed.customer_id),
            }
        )
        attempt_rows.append(
            attempt_row(result.claimed.delivery_id, result.attempted_at, result.attempt)
        )
        by_endpoint.setdefault(result.claimed.endpoint_id, []).append(result)
        ATTEMPTS.labels(result.attempt.outcome).inc()
        if result.attempt.succeeded:
            LAG.observe(max(0.0, (now - result.claimed.event.occurred_at).total_seconds()))
    async with unit_of_work() as conn:
        await repository.settle(conn, settled_rows, attempt_rows)
        for endpoint_id, endpoint_results in by_endpoint.items():
            await _endpoint_health(conn, endpoint_id, endpoint_results, now)


async def _endpoint_health(
    conn: Connection, endpoint_id: uuid.UUID, results: Sequence[_Settled], now: datetime
) -> None:
    successes = [r.attempted_at for r in results if r.attempt.succeeded]
    failures = [r for r in results if not r.attempt.succeeded]
    await repository.mark_endpoint_health(
        conn,
        endpoint_id,
        succeeded_at=max(successes) if successes else None,
        failed_at=min(r.attempted_at for r in failures) if failures else None,
        error=failures[-1].attempt.error if failures else None,
    )
    if any(r.attempt.status_code == 410 for r in results):
        await _disable(conn, endpoint_id, "The endpoint answered 410 Gone.", now)
    elif not successes:
        since = await repository.failing_since(conn, endpoint_id)
        if since is not None and now - since >= DISABLE_AFTER:
            await _disable(
                conn,
                endpoint_id,
                f"Every delivery failed for {DISABLE_AFTER.days} days (since {since:%Y-%m-%d %H:%M} UTC).",
                now,
            )


async def _disable(conn: Connection, endpoint_id: uuid.UUID, reason: str, now: datetime) -> None:
    endpoint = await repository.disable(conn, endpoint_id, reason, now)
    if endpoint is None:
        return
    log.warning("webhook_endpoint_disabled", endpoint_id=str(endpoint_id), reason=reason)
    await events.record(
        conn,
        "webhook.endpoint_disabled",
        customer_id=None,
        data={"endpoint_id": str(endpoint.id), "url": endpoint.url, "reason": reason},
    )


async def dispatch(batch_size: int = 1000) -> int:
    """Fan out every stamped event not yet dispatched; deliveries created."""
    created = 0
    while True:
        async with unit_of_work() as conn:
            read, made = await repository.dispatch(conn, now=clock.now(), batch_size=batch_size)
        created += made
        if read < batch_size:
            return created


async def claim(limit: int, lease: timedelta = LEASE) -> list[Claimed]:
    now = clock.now()
    async with unit_of_work() as conn:
        rows = await repository.claim(conn, now=now, leased_until=now + lease, limit=limit)
    return [Claimed.from_row(row, now) for row in rows]


def new_client(policy: ssrf.TargetPolicy, *, max_connections: int = 200) -> httpx.AsyncClient:
    """HTTP/1.1 with keep-alive, no redirects, every connection checked by the SSRF guard."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        transport=ssrf.guarded_transport(policy, limits=limits),
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        follow_redirects=False,
    )


async def deliver_due(client: httpx.AsyncClient, limit: int = 500) -> int:
    """Dispatch, then claim, send and settle every due delivery once (tests and one-off runs):
    deliveries attempted."""
    await dispatch()
    claimed = await claim(limit)

    async def attempt(item: Claimed) -> _Settled:
        now = clock.now()
        return _Settled(item, await send(client, item, now), now)

    results = await asyncio.gather(*(attempt(item) for item in claimed))
    await settle(results)
    return len(results)


@dataclass
class Deliverer:
    """The worker's delivery loop: up to ``concurrency`` deliveries claimed and in flight, at most
    ``connections_per_endpoint`` HTTP requests at once to one endpoint, results written in
    batches, idle polls every ``poll_interval`` seconds.

    Claims are made in batches (a quarter of ``concurrency`` at least, or whenever nothing is in
    flight), and the per-endpoint limit is ours rather than the connection pool's: httpcore's pool
    rescans every connection for each queued request, which cost more than the sending itself at a
    few hundred requests in flight (docs/benchmarks.md)."""

    policy: ssrf.TargetPolicy
    concurrency: int = 256
    connections_per_endpoint: int = 16
    lease: timedelta = LEASE
    poll_interval: float = 0.2
    settle_interval: float = 0.02
    attempted: int = 0
    _backlog_read_at: float = 0.0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _results: list[_Settled] = field(default_factory=list)
    _in_flight: set["asyncio.Task[None]"] = field(default_factory=set)
    _gates: dict[uuid.UUID, asyncio.Semaphore] = field(default_factory=dict)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Never raises (but for cancellation): database errors are logged and retried."""
        log.info("webhook_deliverer_started", concurrency=self.concurrency)
        async with new_client(self.policy, max_connections=self.concurrency) as client:
            settler = asyncio.create_task(self._settle_loop())
            try:
                while not self._stopping.is_set():
                    try:
                        await self._round(client)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # database down or not migrated: retry
                        log.warning("webhook_deliverer_unavailable", error=f"{type(exc).__name__}")
                        await self._sleep(1.0)
            finally:
                if self._in_flight:
                    await asyncio.wait(self._in_flight, timeout=TIMEOUT_SECONDS + 1)
                self._stopping.set()
                self._wake.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(settler, 10)
        log.info("webhook_deliverer_stopped", attempted=self.attempted)

    async def _round(self, client: httpx.AsyncClient) -> None:
        self._wake.clear()
        await dispatch()
        room = self.concurrency - len(self._in_flight)
        batch = max(1, self.concurrency // 4)
        claimed = await claim(room, self.lease) if room >= batch or not self._in_flight else []
        if time.monotonic() - self._backlog_read_at > 1.0:
            self._backlog_read_at = time.monotonic()
            async with unit_of_work() as conn:
                BACKLOG.set(await repository.backlog(conn))
        for item in claimed:
            task = asyncio.create_task(self._attempt(client, item))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        IN_FLIGHT.set(len(self._in_flight))
        if len(claimed) < room or room <= 0:
            await self._sleep(self.poll_interval)

    async def _attempt(self, client: httpx.AsyncClient, item: Claimed) -> None:
        gate = self._gates.get(item.endpoint_id)
        if gate is None:
            gate = self._gates[item.endpoint_id] = asyncio.Semaphore(self.connections_per_endpoint)
        async with gate:
            now = clock.now()
            attempt = await send(client, item, now)
        self._results.append(_Settled(item, attempt, now))
        self.attempted += 1

    async def _settle_loop(self) -> None:
        while not (self._stopping.is_set() and not self._results and not self._in_flight):
            if not self._results:
                await asyncio.sleep(self.settle_interval)
                continue
            batch, self._results = self._results, []
            try:
                await settle(batch)
            except Exception as exc:
                # Unrecorded attempts are sent again when their lease ends (same webhook-id).
                log.warning(
                    "webhook_settle_failed", error=f"{type(exc).__name__}", count=len(batch)
                )
            self._wake.set()  # a settled delivery may let its customer's next one go

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
