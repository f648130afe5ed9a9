"""W3C Trace Context for every request, and OpenTelemetry spans when ``KEHU_OTEL_ENDPOINT`` is set.

Always on, because it costs a few microseconds: an incoming ``traceparent`` is parsed (an invalid
one is ignored and a new trace starts), the response carries a ``traceparent`` for the request's
server span, and the request's log lines carry its ``trace_id``.

With an endpoint, the OpenTelemetry SDK (the ``otel`` extra, imported only then) exports, over
OTLP/HTTP in batches: one server span per request, one client span per SQL statement run inside a
request or job (SQLAlchemy executions through an ``Engine`` event, ``DriverStatement``s through
``sql_span``) and one span per job run. Spans carry statement text (at most 1 KiB), never bound
parameters, query strings or paths: those are PII or credentials (a survey link's token). Without
an endpoint there is no SDK, no exporter and no span object, and the SQL event is not listened to.

Only the OpenTelemetry API (a dependency of FastAPI's) is imported always. The provider is Kehu's
own, not the process-global one, so it never doubles the server spans of FastAPI's hooks
(``KEHU_OPENTELEMETRY``), which serve a provider something else configured.
"""

import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry import context, trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    Tracer,
    TraceState,
)
from sqlalchemy import Engine, event

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

INSTALL_HINT = (
    "KEHU_OTEL_ENDPOINT is set but the OpenTelemetry SDK is not installed: install with "
    "`uv run --extra otel ...` (or `pip install 'kehu[otel]'`)."
)
MAX_STATEMENT_BYTES = 1024
_TRACEPARENT = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE_ID = b"0" * 32
_ZERO_SPAN_ID = b"0" * 16
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_NOTHING = nullcontext()
# The SDK's tracer and provider while exporting; both None otherwise (the cost-free path).
_tracer: Tracer | None = None
_provider: "TracerProvider | None" = None
_SPAN_KEY = "_kehu_span"  # where a SQLAlchemy execution context keeps its statement's span


class TracingUnavailable(RuntimeError):
    """KEHU_OTEL_ENDPOINT is set and the SDK cannot be imported."""


class TraceParent(NamedTuple):
    trace_id: str
    parent_id: str
    flags: str


def parse_traceparent(value: bytes | str | None) -> TraceParent | None:
    """A valid version-00 ``traceparent``, or None for anything else (absent, malformed, another
    version, upper-case hex, an all-zero trace or parent id): the caller then starts a new trace."""
    if value is None:
        return None
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
    match = _TRACEPARENT.fullmatch(raw.strip(b" \t"))
    if match is None:
        return None
    trace_id, parent_id, flags = match.groups()
    if trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_SPAN_ID:
        return None
    return TraceParent(trace_id.decode(), parent_id.decode(), flags.decode())


def enabled() -> bool:
    return _tracer is not None


class RequestTrace:
    """One request's place in its trace: ``trace_id`` for the logs, ``traceparent`` for the
    response, and while exporting the server span, ended by ``end``."""

    __slots__ = ("_route_of", "_span", "_token", "trace_id", "traceparent")

    def __init__(
        self,
        trace_id: str,
        traceparent: bytes,
        span: Span | None = None,
        token: object = None,
        route_of: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.traceparent = traceparent
        self._span = span
        self._token = token
        self._route_of = route_of

    def end(self, status: int, scope: Mapping[str, Any]) -> None:
        """Name the span by its route template (known only once routing ran), record the status
        and export it; nothing without a span."""
        span = self._span
        if span is None:
            return
        self._span = None
        route = self._route_of(scope) if self._route_of is not None else None
        span.set_attribute("http.response.status_code", status)
        if route is not None:
            span.set_attribute("http.route", route)
            span.update_name(f"{_method_name(scope.get('method', ''))} {route}")
        if status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(StatusCode.ERROR)
        span.end()
        context.detach(self._token)  # type: ignore[arg-type]


def server_trace(
    headers: Mapping[bytes, bytes],
    method: str,
    request_id: str,
    route_of: Callable[[Any], str | None],
) -> RequestTrace:
    """The request's trace: continued from a valid ``traceparent`` header, else a new one.
    ``route_of(scope)`` gives the route template when the span ends (only called when
    exporting)."""
    parent = parse_traceparent(headers.get(b"traceparent"))
    if _tracer is None:
        if parent is None:
            # One system call for both ids. Not recorded here, so the new trace is not marked
            # sampled; a continued one keeps the caller's decision.
            ids = os.urandom(24).hex()
            trace_id, span_id, flags = ids[:32], ids[32:], "00"
        else:
            trace_id, span_id, flags = parent.trace_id, os.urandom(8).hex(), parent.flags
        return RequestTrace(trace_id, f"00-{trace_id}-{span_id}-{flags}".encode())
    return _start_server_span(
        _tracer, parent, headers.get(b"tracestate"), method, request_id, route_of
    )


def _method_name(method: str) -> str:
    return method if method in _KNOWN_METHODS else "HTTP"


def _start_server_span(
    tracer: Tracer,
    parent: TraceParent | None,
    tracestate: bytes | None,
    method: str,
    request_id: str,
    route_of: Callable[[Any], str | None],
) -> RequestTrace:
    if parent is not None:
        remote = SpanContext(
            trace_id=int(parent.trace_id, 16),
            span_id=int(parent.parent_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(int(parent.flags, 16)),
            trace_state=TraceState.from_header([tracestate.decode("latin-1")])
            if tracestate
            else None,
        )
        parent_context = trace.set_span_in_context(NonRecordingSpan(remote))
    else:
        # The current context: a span FastAPI's own hooks opened (KEHU_OPENTELEMETRY), if any.
        parent_context = context.get_current()
    span = tracer.start_span(
        _method_name(method),
        context=parent_context,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": method if method in _KNOWN_METHODS else "_OTHER",
            "kehu.request_id": request_id,
        },
    )
    token = context.attach(trace.set_span_in_context(span, parent_context))
    ids = span.get_span_context()
    trace_id = format(ids.trace_id, "032x")
    header = f"00-{trace_id}-{ids.span_id:016x}-{int(ids.trace_flags):02x}".encode()
    return RequestTrace(trace_id, header, span, token, route_of)


def _statement_attributes(statement: str, database: str | None) -> dict[str, str]:
    text = statement.strip()
    if len(text) > MAX_STATEMENT_BYTES or not text.isascii():
        text = text.encode()[:MAX_STATEMENT_BYTES].decode(errors="ignore")
    attributes = {
        "db.system": "postgresql",
        "db.system.name": "postgresql",
        "db.query.text": text,
        "db.operation.name": text.split(None, 1)[0].upper() if text else "SQL",
    }
    if database:
        attributes["db.namespace"] = database
    return attributes


def _start_sql_span(tracer: Tracer, statement: str, database: str | None) -> Span | None:
    """A client span for one statement, as a child of the current request or job span; None
    outside one (background loops poll the database all the time) or when it is not sampled."""
    if not trace.get_current_span().is_recording():
        return None
    attributes = _statement_attributes(statement, database)
    return tracer.start_span(
        attributes["db.operation.name"], kind=SpanKind.CLIENT, attributes=attributes
    )


def _end_with_error(span: Span, error: BaseException) -> None:
    # The type only: a database error's message can quote a row's values.
    span.set_attribute("error.type", type(error).__qualname__)
    span.set_status(StatusCode.ERROR)
    span.end()


@contextmanager
def _traced_statement(tracer: Tracer, statement: str, database: str | None) -> Iterator[None]:
    span = _start_sql_span(tracer, statement, database)
    if span is None:
        yield
        return
    try:
        yield
    except BaseException as error:
        _end_with_error(span, error)
        raise
    span.end()


def sql_span(statement: str, database: str | None = None) -> AbstractContextManager[None]:
    """A span around a statement run outside SQLAlchemy's execution (``DriverStatement``)."""
    if _tracer is None:
        return _NOTHING
    return _traced_statement(_tracer, statement, database)


@contextmanager
def _traced_job(tracer: Tracer, name: str) -> Iterator[None]:
    with tracer.start_as_current_span(
        f"job {name}",
        kind=SpanKind.CONSUMER,
        attributes={"kehu.job.name": name},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except BaseException as error:
            span.set_attribute("kehu.job.outcome", "failed")
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(StatusCode.ERROR)
            raise
        span.set_attribute("kehu.job.outcome", "succeeded")


def job_span(name: str) -> AbstractContextManager[None]:
    """A span around one run of the job ``name``; its statements become its children."""
    if _tracer is None:
        return _NOTHING
    return _traced_job(_tracer, name)


def _before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if _tracer is None or context is None:
        return
    span = _start_sql_span(_tracer, statement, conn.engine.url.database)
    if span is not None:
        setattr(context, _SPAN_KEY, span)


def _after_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    span = getattr(context, _SPAN_KEY, None)
    if span is not None:
        setattr(context, _SPAN_KEY, None)
        span.end()


def _handle_error(exception_context: Any) -> None:
    context = exception_context.execution_context
    span = getattr(context, _SPAN_KEY, None)
    if span is not None:
        setattr(context, _SPAN_KEY, None)
        _end_with_error(span, exception_context.original_exception)


_SQL_EVENTS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("before_cursor_execute", _before_cursor_execute),
    ("after_cursor_execute", _after_cursor_execute),
    ("handle_error", _handle_error),
)


def sql_hooks_installed() -> bool:
    return all(event.contains(Engine, name, hook) for name, hook in _SQL_EVENTS)


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector: its base URL gets ``/v1/traces``."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def require_sdk() -> None:
    """Raise ``TracingUnavailable`` (one line, saying what to install) without the ``otel``
    extra."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise TracingUnavailable(INSTALL_HINT) from None


def configure(endpoint: str | None, service_name: str = "kehu") -> None:
    """Export spans to ``endpoint`` from now on; does nothing without one, or when this process
    already exports."""
    if endpoint is None or _provider is not None:
        return
    require_sdk()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    use_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))), service_name)


def use_processor(processor: "SpanProcessor", service_name: str = "kehu") -> None:
    """Start tracing into ``processor`` (``configure`` passes the OTLP batch exporter; tests an
    in-memory one). The provider flushes what it holds when the process exits."""
    global _tracer, _provider
    require_sdk()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    shutdown()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(processor)
    _provider, _tracer = provider, provider.get_tracer("kehu")
    for name, hook in _SQL_EVENTS:
        event.listen(Engine, name, hook)


def shutdown() -> None:
    """Stop tracing: flush and close the exporter, and stop listening to SQL statements."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    for name, hook in _SQL_EVENTS:
        if event.contains(Engine, name, hook):
            event.remove(Engine, name, hook)
    if provider is not None:
        provider.shutdown()
