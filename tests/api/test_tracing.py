"""W3C Trace Context on every request, and OpenTelemetry spans when tracing is configured."""

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2 as httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import ValidationError
from sqlalchemy import text
from typer.testing import CliRunner

from app import cli
from app.api import deps, middleware
from app.core import tracing
from app.core.config import Settings, get_settings
from app.customers.repository import _INSERT_WITH_EVENT
from app.db import unit_of_work
from app.main import create_app
from app.worker.queue import enqueue
from app.worker.runner import Worker
from tests.fixtures.factories import customer_body

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT_SHAPE = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE_ID}-{PARENT_ID}-01", (TRACE_ID, PARENT_ID, "01")),
        (f"00-{TRACE_ID}-{PARENT_ID}-00", (TRACE_ID, PARENT_ID, "00")),
        (f" 00-{TRACE_ID}-{PARENT_ID}-01\t", (TRACE_ID, PARENT_ID, "01")),  # optional whitespace
        (f"00-{TRACE_ID}-{PARENT_ID}-01".encode(), (TRACE_ID, PARENT_ID, "01")),
        (None, None),
        ("", None),
        (f"01-{TRACE_ID}-{PARENT_ID}-01", None),  # a version this parser does not know
        (f"ff-{TRACE_ID}-{PARENT_ID}-01", None),  # the forbidden version
        (f"00-{'0' * 32}-{PARENT_ID}-01", None),  # all-zero trace id
        (f"00-{TRACE_ID}-{'0' * 16}-01", None),  # all-zero parent id
        (f"00-{TRACE_ID.upper()}-{PARENT_ID}-01", None),  # upper-case hex
        (f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01", None),  # trace id one digit short
        (f"00-{TRACE_ID}-{PARENT_ID}0-01", None),  # parent id one digit long
        (f"00-{TRACE_ID}-{PARENT_ID}-1", None),
        (f"00-{TRACE_ID}-{PARENT_ID}-01-extra", None),
        (f"00-{TRACE_ID}-{PARENT_ID[:-1]}g-01", None),
        (f"00_{TRACE_ID}_{PARENT_ID}_01", None),
        ("00-é-x-01", None),
    ],
)
def test_traceparent_parsing(header: str | bytes | None, expected: tuple[str, ...] | None) -> None:
    assert tracing.parse_traceparent(header) == expected


def _response_trace(response: httpx.Response) -> tuple[str, str, str]:
    match = TRACEPARENT_SHAPE.fullmatch(response.headers["traceparent"])
    assert match is not None, response.headers["traceparent"]
    trace_id, span_id, flags = match.groups()
    return trace_id, span_id, flags


async def test_response_continues_the_incoming_trace(client: httpx.AsyncClient) -> None:
    assert not tracing.enabled()
    response = await client.get(
        "/v1/customers", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    )
    assert response.status_code == 200
    trace_id, span_id, flags = _response_trace(response)
    # The server span is a new span in the caller's trace, and keeps its sampling decision.
    assert (trace_id, flags) == (TRACE_ID, "01")
    assert span_id not in (PARENT_ID, "0" * 16)


@pytest.mark.parametrize(
    "incoming",
    [None, f"00-{'0' * 32}-{PARENT_ID}-01", f"ff-{TRACE_ID}-{PARENT_ID}-01", "garbage"],
)
async def test_without_a_valid_traceparent_a_new_trace_starts(
    anon: httpx.AsyncClient, incoming: str | None
) -> None:
    headers = {"traceparent": incoming} if incoming is not None else {}
    # Errors too: an unauthenticated request and an unknown route.
    first = await anon.get("/v1/customers", headers=headers)
    second = await anon.get("/no/such/route", headers=headers)
    assert (first.status_code, second.status_code) == (401, 404)
    first_trace, _, _ = _response_trace(first)
    second_trace, _, _ = _response_trace(second)
    assert first_trace != second_trace
    assert TRACE_ID not in (first_trace, second_trace)
    assert "0" * 32 not in (first_trace, second_trace)


async def test_a_refused_oversized_body_carries_the_traceparent(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/customers",
        content=b"{}",
        headers={
            "content-length": str(2 * 1024 * 1024),
            "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
        },
    )
    assert response.status_code == 413
    assert _response_trace(response)[0] == TRACE_ID


async def test_the_access_line_carries_the_trace_id(
    database_url: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    application = create_app(Settings(log_json=True, log_level="info", rate_limit="100000/minute"))
    # A structlog logger keeps the level of the first configuration it logged under (an earlier
    # test's "warning"); a fresh one logs at this app's "info".
    monkeypatch.setattr(middleware, "log", structlog.get_logger("kehu.access"))
    async with (
        LifespanManager(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://kehu.test"
        ) as http,
    ):
        response = await http.get(
            "/healthz/no-such",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "x-request-id": "trace-log"},
        )
    assert response.status_code == 404
    out, _ = capfd.readouterr()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (access,) = [
        line
        for line in lines
        if line.get("logger") == "kehu.access" and line.get("request_id") == "trace-log"
    ]
    assert access["trace_id"] == TRACE_ID
    deps.reset_rate_limiter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory (the export test below covers OTLP/HTTP)."""
    exporter = InMemorySpanExporter()
    tracing.use_processor(SimpleSpanProcessor(exporter), "kehu-test")
    try:
        yield exporter
    finally:
        tracing.shutdown()


def _attribute_text(span: ReadableSpan) -> str:
    return json.dumps({"name": span.name, **dict(span.attributes or {})}, default=str)


def _children(finished: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in finished
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def _server_span(finished: list[ReadableSpan], name: str) -> ReadableSpan:
    (server,) = [span for span in finished if span.kind == SpanKind.SERVER and span.name == name]
    return server


async def test_a_request_makes_a_server_span_with_sql_children_and_no_values(
    spans: InMemorySpanExporter, client: httpx.AsyncClient
) -> None:
    assert tracing.enabled()
    assert tracing.sql_hooks_installed()
    marker = f"Marker{secrets.token_hex(6)}"
    created = await client.post(
        "/v1/customers",
        json=customer_body(first_name=marker, email=f"{marker.lower()}@example.com"),
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=1"},
    )
    assert created.status_code == 201, created.text
    listed = await client.get("/v1/customers", params={"q": marker})
    assert listed.status_code == 200
    assert [c["first_name"] for c in listed.json()["data"]] == [marker]
    finished = list(spans.get_finished_spans())

    create = _server_span(finished, "POST /v1/customers")
    assert create.context is not None
    assert create.parent is not None
    assert format(create.context.trace_id, "032x") == TRACE_ID
    assert (format(create.parent.span_id, "016x"), create.parent.is_remote) == (PARENT_ID, True)
    assert create.context.trace_state.get("vendor") == "1"
    assert create.attributes is not None
    assert create.attributes["http.response.status_code"] == 201
    assert create.attributes["http.route"] == "/v1/customers"
    assert created.headers["traceparent"] == f"00-{TRACE_ID}-{create.context.span_id:016x}-01"
    assert create.resource.attributes["service.name"] == "kehu-test"
    # The insert runs as a DriverStatement on the raw asyncpg connection.
    statements = _children(finished, create)
    assert statements, [s.name for s in finished]
    inserted = [
        s
        for s in statements
        if s.attributes is not None
        and str(s.attributes["db.query.text"]) == _INSERT_WITH_EVENT.sql.strip()[:1024]
    ]
    assert len(inserted) == 1
    for statement in statements:
        assert statement.kind == SpanKind.CLIENT
        assert statement.context is not None
        assert statement.context.trace_id == create.context.trace_id
        assert statement.attributes is not None
        assert statement.attributes["db.system"] == "postgresql"
        assert len(str(statement.attributes["db.query.text"]).encode()) <= 1024

    # The search runs through SQLAlchemy's execution: the engine event made its span.
    search = _server_span(finished, "GET /v1/customers")
    assert search.context is not None
    assert search.parent is None
    assert search.context.trace_id != create.context.trace_id
    selects = [
        s
        for s in _children(finished, search)
        if s.attributes is not None and "FROM customers" in str(s.attributes["db.query.text"])
    ]
    assert selects
    assert all(s.name == "SELECT" for s in selects)

    for span in finished:
        assert marker not in _attribute_text(span)
        assert marker.lower() not in _attribute_text(span)


async def test_a_failing_statement_marks_its_span(
    spans: InMemorySpanExporter, database_url: str
) -> None:
    with pytest.raises(Exception, match="division"), tracing.job_span("test.failing"):
        async with unit_of_work() as conn:
            await conn.execute(text("SELECT 1 / 0"))
    (job,) = [s for s in spans.get_finished_spans() if s.name == "job test.failing"]
    (statement,) = _children(list(spans.get_finished_spans()), job)
    assert statement.status.status_code == StatusCode.ERROR
    assert job.status.status_code == StatusCode.ERROR
    assert job.attributes is not None
    assert job.attributes["kehu.job.outcome"] == "failed"


@asynccontextmanager
async def running_worker(dsn: str, jobs: dict[str, Any]) -> AsyncIterator[None]:
    worker = Worker(dsn, jobs=jobs, schedules={}, runners=[])
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=15)


async def test_a_job_run_makes_a_span_with_its_statements(
    spans: InMemorySpanExporter, database_url: str
) -> None:
    done = asyncio.Event()

    async def probe(payload: dict[str, Any]) -> None:
        async with unit_of_work() as conn:
            await conn.execute(text("SELECT count(*) FROM customers"))
        done.set()

    async with running_worker(database_url, {"test.traced": probe}):
        async with unit_of_work() as conn:
            await enqueue(conn, "test.traced", {"n": 1})
        await asyncio.wait_for(done.wait(), timeout=20)
        await asyncio.sleep(0.2)  # the span ends when the handler returns
    finished = list(spans.get_finished_spans())
    (job,) = [s for s in finished if s.name == "job test.traced"]
    assert job.attributes is not None
    assert (job.attributes["kehu.job.name"], job.attributes["kehu.job.outcome"]) == (
        "test.traced",
        "succeeded",
    )
    assert [s.attributes["db.query.text"] for s in _children(finished, job) if s.attributes] == [
        "SELECT count(*) FROM customers"
    ]


async def test_tracing_off_installs_nothing_and_makes_no_spans(
    database_url: str, client: httpx.AsyncClient
) -> None:
    exporter = InMemorySpanExporter()
    tracing.use_processor(SimpleSpanProcessor(exporter))
    assert tracing.sql_hooks_installed()
    tracing.shutdown()
    assert not tracing.enabled()
    assert not tracing.sql_hooks_installed()
    assert isinstance(tracing.sql_span("SELECT 1"), type(tracing.job_span("x")))
    assert (await client.post("/v1/customers", json=customer_body())).status_code == 201
    with tracing.job_span("test.off"):
        async with unit_of_work() as conn:
            await conn.execute(text("SELECT 1"))
    assert exporter.get_finished_spans() == ()
    # create_app with no endpoint leaves it off.
    create_app(Settings(log_level="warning"))
    assert not tracing.enabled()


def test_the_sdk_is_not_even_imported_without_an_endpoint() -> None:
    probe = (
        "import sys\n"
        "from app.core.config import Settings\n"
        "from app.main import create_app\n"
        "create_app(Settings(log_level='warning'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEHU_OTEL")}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_endpoint_setting_is_checked() -> None:
    assert Settings(otel_endpoint="").otel_endpoint is None
    assert (
        Settings(otel_endpoint=" http://collector:4318 ").otel_endpoint == "http://collector:4318"
    )
    with pytest.raises(ValidationError, match="http:// or https:// URL"):
        Settings(otel_endpoint="collector:4318")
    assert tracing.traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert tracing.traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


def test_an_endpoint_without_the_sdk_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    with pytest.raises(tracing.TracingUnavailable, match=r"uv run --extra otel"):
        tracing.configure("http://127.0.0.1:4318")
    assert not tracing.enabled()
    monkeypatch.setenv("KEHU_OTEL_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("KEHU_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.cli, ["worker"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip() == tracing.INSTALL_HINT


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, self.headers["content-type"], body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def test_spans_are_exported_over_otlp_http(client: httpx.AsyncClient) -> None:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        tracing.configure(f"http://127.0.0.1:{server.server_address[1]}", "kehu-export")
        response = await client.get(
            "/v1/customers", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        )
        assert response.status_code == 200
        await asyncio.to_thread(tracing.shutdown)  # flushes the batch
    finally:
        tracing.shutdown()
        server.shutdown()
        server.server_close()
    assert received, "nothing was exported"
    exported: list[Any] = []
    for path, content_type, body in received:
        assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert service["service.name"] == "kehu-export"
            exported.extend(s for scope in resource_spans.scope_spans for s in scope.spans)
    server_spans = [s for s in exported if s.name == "GET /v1/customers"]
    assert len(server_spans) == 1
    assert server_spans[0].trace_id.hex() == TRACE_ID
    assert any(s.parent_span_id == server_spans[0].span_id for s in exported)
