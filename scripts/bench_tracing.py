"""What tracing costs per request (docs/benchmarks.md, "Tracing overhead").

Drives the ASGI app in process (no HTTP server, no client library: only the app's own work) with
sequential requests, in three variants interleaved round by round:

- ``stubbed``: the trace hooks reduced to a constant (no header parsing, no random ids): the
  request path as it was before tracing, but for one more response header;
- ``off``: tracing as shipped with KEHU_OTEL_ENDPOINT unset (parse ``traceparent``, new ids);
- ``on``: the SDK configured, spans batched to an exporter that discards them (no network).

Also times ``tracing.server_trace`` alone. Needs a PostgreSQL (``KEHU_TEST_DATABASE_URL``, as the
tests): it builds a migrated database and drops it afterwards.

    uv run python scripts/bench_tracing.py [--requests 1000] [--rounds 5]
"""

import argparse
import asyncio
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from app.api import middleware
from app.core import tracing
from app.core.auth import Caller
from app.core.config import Settings
from app.core.ids import new_id
from app.customers.schemas import CustomerCreate
from app.customers.service import create_customer
from app.db import engine as db
from app.db import unit_of_work
from app.main import create_app
from tests.fixtures import database
from tests.fixtures.factories import create_api_key

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def request(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("kehu.bench", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def batch(app: Any, path: str, headers: list[tuple[bytes, bytes]], n: int) -> float:
    """CPU seconds of this process per request (PostgreSQL's own work is not counted)."""
    started = time.process_time()
    for _ in range(n):
        status = await request(app, path, headers)
        assert status == 200, status
    return (time.process_time() - started) / n


def stub_hooks() -> Callable[[], None]:
    constant = tracing.RequestTrace("0" * 32, b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-00")
    real = tracing.server_trace
    tracing.server_trace = lambda *args, **kwargs: constant
    return lambda: setattr(tracing, "server_trace", real)


async def main(requests: int, rounds: int) -> None:
    server = database.server_url()
    await database.build_template(server)
    name, url = await database.clone(server)
    try:
        db.configure(db.create_engine(url, pool_size=2))
        async with unit_of_work() as conn:
            key = await create_api_key(conn, "admin", name="bench")
        app = create_app(Settings(log_level="warning", rate_limit="10000000/minute"))
        async with LifespanManager(app):
            auth = [(b"host", b"kehu.bench"), (b"authorization", f"Bearer {key}".encode())]
            created = await _create_customer()
            paths = {"read": f"/v1/customers/{created}", "healthz": "/healthz"}
            figures: dict[tuple[str, str], list[float]] = {}
            for variant_round in range(rounds + 1):  # round 0 warms up
                for variant in ("stubbed", "off", "on"):
                    restore: Callable[[], None] = lambda: None  # noqa: E731
                    if variant == "stubbed":
                        restore = stub_hooks()
                    elif variant == "on":
                        tracing.use_processor(BatchSpanProcessor(Discard()), "bench")
                    try:
                        for label, path in paths.items():
                            headers = [*auth, (b"traceparent", TRACEPARENT)]
                            cost = await batch(app, path, headers, requests)
                            if variant_round:
                                figures.setdefault((label, variant), []).append(cost)
                    finally:
                        restore()
                        tracing.shutdown()
        # The machine is shared: the fastest round is the least disturbed one, the median the
        # typical one; both are printed, each against the stubbed variant's.
        print(f"{requests} requests x {rounds} rounds; CPU µs per request: fastest round, median")
        for label in paths:
            fastest = min(figures[(label, "stubbed")])
            typical = statistics.median(figures[(label, "stubbed")])
            for variant in ("stubbed", "off", "on"):
                values = figures[(label, variant)]
                print(
                    f"  {label:8} {variant:8} {min(values) * 1e6:7.1f} "
                    f"({(min(values) / fastest - 1) * 100:+5.1f} %)   "
                    f"{statistics.median(values) * 1e6:7.1f} "
                    f"({(statistics.median(values) / typical - 1) * 100:+5.1f} %)"
                )
        incoming = {b"traceparent": TRACEPARENT}
        for label, given in (("with traceparent", incoming), ("without", {})):
            n = 200_000
            seconds = timeit.timeit(
                lambda given=given: tracing.server_trace(  # type: ignore[misc]
                    given, "GET", "id", middleware._route_template
                ),
                number=n,
            )
            print(f"  server_trace alone, {label}: {seconds / n * 1e6:.2f} µs")
    finally:
        await db.dispose()
        await database.drop(server, name)
        await database.drop_template(server)


async def _create_customer() -> str:
    async with unit_of_work() as conn:
        operator = Caller(key_id=new_id(), name="bench", scopes=frozenset({"admin"}))
        created = await create_customer(conn, operator, CustomerCreate(first_name="Bench"))
    return str(created.id)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.rounds))
