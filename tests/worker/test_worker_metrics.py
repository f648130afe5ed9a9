"""`kehu worker` with KEHU_WORKER_METRICS_PORT serves its own scrape: the events its sequencer
stamps and its pools, which no API process's scrape sees."""

import asyncio
import os
import signal
import subprocess
import uuid

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from app.db import unit_of_work
from app.events import service as events
from tests.fixtures.processes import start_kehu
from tests.test_cli_serve import _free_port


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _start_worker(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": database_url,
        "KEHU_WORKER_METRICS_PORT": str(port),
        "KEHU_LOG_LEVEL": "warning",
    }
    return start_kehu("worker", env=env, own_session=True)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(5)


async def test_a_worker_serves_the_events_it_stamped_and_its_pools(database_url: str) -> None:
    port = _free_port()
    worker = _start_worker(database_url, port)
    try:
        async with unit_of_work() as conn:
            for _ in range(3):
                await events.record(conn, "customer.created", customer_id=uuid.uuid4(), data={})
        base = f"http://127.0.0.1:{port}"
        stamped = 0.0
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        async with httpx.AsyncClient(base_url=base, timeout=5) as http, asyncio.timeout(60):
            while stamped < 3:
                try:
                    response = await http.get("/metrics")
                except httpx.TransportError:
                    await asyncio.sleep(0.2)  # not listening yet
                    continue
                assert response.status_code == 200
                samples = _samples(response.text)
                stamped = samples.get(("kehu_events_stamped_total", ()), 0.0)
                await asyncio.sleep(0.2)
            assert (await http.get("/other")).status_code == 404
        assert stamped == 3
        assert samples[("kehu_db_pool_size", (("pool", "write"),))] == 4
    finally:
        await asyncio.to_thread(_stop, worker)
    assert worker.returncode == 0
