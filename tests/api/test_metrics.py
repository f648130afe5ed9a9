"""/metrics after real traffic: every metric of docs/operations.md#metrics, with values that follow
from the requests made; several workers answering one coherent scrape; the Grafana dashboard only
naming metrics Kehu exports.

Metrics are process-wide and other tests in this process add to them, so counts are compared
between a scrape before and one after."""

import asyncio
import json
import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.api import deps
from app.api.metrics import database_snapshot
from app.apikeys import service as apikeys
from app.core.config import Settings
from app.db import read_connection, unit_of_work
from app.db.engine import engines
from app.db.pool import FairAsyncQueuePool
from app.main import create_app
from app.worker.queue import enqueue
from app.worker.runner import Worker
from tests.fixtures.database import ROOT
from tests.fixtures.factories import KeyFactory, bearer, customer_body
from tests.fixtures.processes import start_kehu

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly these labels; None when it is not exported."""
    return samples.get((name, frozenset(labels.items())))


def count(samples: Samples, name: str, **labels: str) -> float:
    """A counter's value, 0 while it has no series yet."""
    return value(samples, name, **labels) or 0.0


async def scrape(client: httpx.AsyncClient) -> Samples:
    database_snapshot.forget()  # the database figures as they are now, not up to 5 s old
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def eventually(client: httpx.AsyncClient, done: Callable[[Samples], bool]) -> Samples:
    """Scrapes until ``done`` holds of one (or 15 s passed): the last scrape."""
    deadline = time.monotonic() + 15
    while True:
        samples = await scrape(client)
        if done(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.1)


async def key_id(secret: str) -> str:
    async with read_connection() as conn:
        caller = await apikeys.authenticate(conn, secret)
    assert caller is not None
    return str(caller.key_id)


async def test_requests_in_flight_and_pools_follow_the_traffic(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    route = {"method": "GET", "route": "/v1/customers/{customer_id}", "status": "404"}
    for _ in range(4):
        missing = await client.get("/v1/customers/0190a3f0-0000-7000-8000-000000000000")
        assert missing.status_code == 404
    read_pool = engines()[1].sync_engine.pool
    assert isinstance(read_pool, FairAsyncQueuePool)

    # Every read connection held: the next request waits for one, in flight meanwhile.
    async with AsyncExitStack() as held:
        for _ in range(read_pool.size()):
            await held.enter_async_context(read_connection())
        waiting = asyncio.create_task(client.get("/v1/customers"))
        deadline = time.monotonic() + 5
        while read_pool.waiting() == 0 and time.monotonic() < deadline:  # noqa: ASYNC110 (no event)
            await asyncio.sleep(0.01)
        busy = await scrape(client)
    assert (await waiting).status_code == 200
    after = await scrape(client)

    histogram = "kehu_http_request_duration_seconds_count"
    assert count(after, histogram, **route) - count(before, histogram, **route) == 4
    assert value(busy, "kehu_http_requests_in_flight") == 1
    assert value(after, "kehu_http_requests_in_flight") == 0
    for pool in ("write", "read"):
        assert value(busy, "kehu_db_pool_size", pool=pool) == 5  # the tests' configured size
    assert value(busy, "kehu_db_pool_checked_out", pool="read") == 5
    assert value(busy, "kehu_db_pool_waiting", pool="read") == 1
    assert value(busy, "kehu_db_pool_waiting", pool="write") == 0
    assert value(after, "kehu_db_pool_checked_out", pool="read") == 0
    assert value(after, "kehu_db_pool_waiting", pool="read") == 0


@pytest.fixture
async def limited_app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(
        log_json=True, log_level="warning", rate_limit="2/minute", auth_failure_limit="2/minute"
    )
    application = create_app(settings)
    async with LifespanManager(application):
        yield application
    deps.reset_rate_limiter()


async def test_refusals_are_counted_by_key(limited_app: FastAPI, make_key: KeyFactory) -> None:
    secret = await make_key("admin")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=limited_app), base_url="http://kehu.test"
    ) as http:
        before = await scrape(http)
        statuses = [
            (await http.get("/v1/customers", headers=bearer(secret))).status_code for _ in range(3)
        ]
        unknown = bearer("kehu_not_a_key")
        failed = [(await http.get("/v1/customers", headers=unknown)).status_code for _ in range(4)]
        after = await scrape(http)
    assert statuses == [200, 200, 429]
    assert failed == [401, 401, 429, 429]
    refused = "kehu_rate_limited_total"
    own = await key_id(secret)
    assert count(after, refused, key_id=own) - count(before, refused, key_id=own) == 1
    by_address = count(after, refused, key_id="by_address") - count(
        before, refused, key_id="by_address"
    )
    assert by_address == 2
    # A client address never becomes a label value.
    assert not [k for (name, k) in after if name == refused and "127.0.0.1" in str(k)]


async def test_graphql_operations_by_name_and_outcome(client: httpx.AsyncClient) -> None:
    listing = "query ListSome { customers(first: 1) { edges { node { id } } } }"
    before = await scrape(client)
    for _ in range(2):
        ok = await client.post("/graphql", json={"query": listing})
        assert ok.status_code == 200
        assert "errors" not in ok.json()
    broken = await client.post("/graphql", json={"query": "query ListSome { noSuchField }"})
    assert broken.json()["errors"]
    unnamed = await client.post(
        "/graphql", json={"query": "{ customers(first: 1) { pageInfo { hasNextPage } } }"}
    )
    assert "errors" not in unnamed.json()
    over_get = await client.get(
        "/graphql",
        params={"query": "query ViaGet { customers(first: 1) { edges { node { id } } } }"},
    )
    assert over_get.status_code == 200
    assert "errors" not in over_get.json()
    after = await scrape(client)

    def added(name: str, **labels: str) -> float:
        return count(after, name, **labels) - count(before, name, **labels)

    operations = "kehu_graphql_operations_total"
    assert added(operations, operation="ListSome", outcome="ok") == 2
    assert added(operations, operation="ListSome", outcome="error") == 1
    assert added(operations, operation="anonymous", outcome="ok") == 1
    assert added(operations, operation="ViaGet", outcome="ok") == 1
    durations = "kehu_graphql_operation_duration_seconds_count"
    assert added(durations, operation="ListSome") == 3
    assert added("kehu_graphql_operation_duration_seconds_sum", operation="ListSome") > 0


async def test_job_runs_durations_and_queue_depth(
    client: httpx.AsyncClient, database_url: str
) -> None:
    finished = asyncio.Event()
    runs: list[str] = []

    async def succeeds(_: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        runs.append("ok")

    async def fails(_: dict[str, Any]) -> None:
        runs.append("error")
        finished.set()
        raise RuntimeError("job failed on purpose")

    before = await scrape(client)
    worker = Worker(
        database_url,
        jobs={
            "test.metrics_ok": succeeds,
            "test.metrics_fail": fails,
            "test.metrics_later": succeeds,
        },
        schedules={},
        runners=[],
    )
    task = asyncio.create_task(worker.run())
    try:
        async with unit_of_work() as conn:
            await enqueue(conn, "test.metrics_ok")
            await enqueue(conn, "test.metrics_ok")
            await enqueue(conn, "test.metrics_later", delay=timedelta(hours=1))
        async with unit_of_work() as conn:
            await enqueue(conn, "test.metrics_fail")

        def runs_counted(samples: Samples) -> bool:
            return (
                count(
                    samples, "kehu_job_runs_total", entrypoint="test.metrics_fail", outcome="error"
                )
                > count(
                    before, "kehu_job_runs_total", entrypoint="test.metrics_fail", outcome="error"
                )
                and runs.count("ok") == 2
            )

        after = await eventually(client, runs_counted)
    finally:
        worker.stop()
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=15)

    def added(name: str, **labels: str) -> float:
        return count(after, name, **labels) - count(before, name, **labels)

    assert added("kehu_job_runs_total", entrypoint="test.metrics_ok", outcome="ok") == 2
    assert added("kehu_job_runs_total", entrypoint="test.metrics_ok", outcome="error") == 0
    assert added("kehu_job_runs_total", entrypoint="test.metrics_fail", outcome="error") == 1
    assert added("kehu_job_duration_seconds_count", entrypoint="test.metrics_ok") == 2
    # Each of the two slept 50 ms.
    assert added("kehu_job_duration_seconds_sum", entrypoint="test.metrics_ok") >= 0.1
    depth = "kehu_job_queue_depth"
    assert value(after, depth, entrypoint="test.metrics_later", status="queued") == 1
    assert value(after, depth, entrypoint="test.metrics_ok", status="queued") is None


async def test_sequencer_stamps_are_counted(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    for n in range(3):
        created = await client.post("/v1/customers", json=customer_body(first_name=f"Seq{n}"))
        assert created.status_code == 201, created.text
    stamped = "kehu_events_stamped_total"
    lag = "kehu_event_sequencer_lag_seconds"

    def caught_up(samples: Samples) -> bool:
        return count(samples, stamped) - count(before, stamped) >= 3 and value(samples, lag) == 0

    after = await eventually(client, caught_up)
    assert count(after, stamped) - count(before, stamped) >= 3
    assert value(after, lag) == 0  # nothing left unstamped


@pytest.fixture
async def app_without_sequencer(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(log_json=True, log_level="warning", run_sequencer=False)
    application = create_app(settings)
    async with LifespanManager(application):
        yield application
    deps.reset_rate_limiter()


async def test_sequencer_lag_is_the_age_of_the_oldest_unstamped_event(
    app_without_sequencer: FastAPI, admin_key: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_without_sequencer),
        base_url="http://kehu.test",
        headers=bearer(admin_key),
    ) as http:
        created = await http.post("/v1/customers", json=customer_body())
        assert created.status_code == 201
        async with unit_of_work() as conn:
            await conn.execute(
                text(
                    "UPDATE events SET occurred_at = now() - interval '120 seconds'"
                    " WHERE position IS NULL"
                )
            )
        samples = await scrape(http)
    lag = value(samples, "kehu_event_sequencer_lag_seconds")
    assert lag is not None
    assert 120 <= lag < 180


async def test_a_slow_database_does_not_hold_the_scrape(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await scrape(client)
    # A queue query slower than the statement timeout: the scrape answers with the last figures.
    monkeypatch.setattr("app.worker.queue._DEPTH", text("SELECT 'x', 'queued', 1 FROM pg_sleep(5)"))
    started = time.monotonic()
    slow = await scrape(client)
    assert time.monotonic() - started < 3
    lag = "kehu_event_sequencer_lag_seconds"
    assert value(slow, lag) == value(first, lag)
    assert value(slow, "kehu_job_queue_depth", entrypoint="x", status="queued") is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape_over_http(port: int) -> Samples:
    # A new connection each time, so any worker may answer.
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return parse(response.text)


def test_two_workers_answer_one_coherent_scrape(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": database_url,
        "KEHU_PORT": str(port),
        "KEHU_DATA_DIR": str(tmp_path / "data"),
        "KEHU_LOG_LEVEL": "error",
        "KEHU_DB_POOL_SIZE": "2",
        "KEHU_RUN_WORKER": "false",
        "KEHU_RUN_SEQUENCER": "false",
        "TMPDIR": str(tmp_path),  # where the shared metrics directory is made
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = start_kehu("serve", "--workers", "2", env=env, capture=True)
    try:
        deadline = time.monotonic() + 40
        pools = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                # Both workers up: their pools (2 connections each) add up to 4.
                pools = value(_scrape_over_http(port), "kehu_db_pool_size", pool="write")
                if pools == 4:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert process.poll() is None, "kehu serve --workers 2 exited"
        assert pools == 4, f"the two workers' pools were not both reported: {pools}"
        assert list(tmp_path.glob("kehu-metrics-*")), "no shared metrics directory"

        requests = 12
        for _ in range(requests):
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        series = {"method": "GET", "route": "/readyz", "status": "200"}
        scrapes = [_scrape_over_http(port) for _ in range(4)]
        counts = [value(s, "kehu_http_request_duration_seconds_count", **series) for s in scrapes]
        assert counts == [requests] * len(scrapes)
        assert all(value(s, "kehu_http_requests_in_flight") == 0 for s in scrapes)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert not list(tmp_path.glob("kehu-metrics-*")), "the shared metrics directory was left"


def exported_metric_names() -> set[str]:
    """Every sample name Kehu's registry can export, series with no value yet included."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
    }
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("kehu_")
        for suffix in suffixes.get(family.type, ("",))
    }


def test_the_dashboard_names_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert any(i["name"] == "DS_PROMETHEUS" for i in dashboard["__inputs"])
    expressions = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert expressions
    referenced = {name for expr in expressions for name in re.findall(r"\bkehu_[a-z0-9_]+", expr)}
    exported = exported_metric_names()
    assert referenced - exported == set()
    # Every metric family of operations.md is on a panel.
    families = {
        "kehu_http_request_duration_seconds_bucket",
        "kehu_http_requests_in_flight",
        "kehu_rate_limited_total",
        "kehu_db_pool_checked_out",
        "kehu_db_pool_waiting",
        "kehu_job_runs_total",
        "kehu_job_duration_seconds_bucket",
        "kehu_job_queue_depth",
        "kehu_graphql_operations_total",
        "kehu_event_sequencer_lag_seconds",
        "kehu_webhook_attempts_total",
    }
    assert families - referenced == set()
    for panel in dashboard["panels"]:
        if panel.get("type") != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_operations_doc_lists_every_metric() -> None:
    section = (ROOT / "docs" / "operations.md").read_text().split("## Metrics", 1)[1]
    documented = set(re.findall(r"`(kehu_[a-z0-9_]+)`", section))
    families = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("kehu_")
    }
    assert families - documented == set()
