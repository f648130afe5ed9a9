"""The ASGI application: ``create_app()`` wires middleware, error handling, /v1, /graphql and ops."""

import asyncio
import copy
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from app.api import deps
from app.api import metrics as scrape
from app.api import openapi as openapi_conventions
from app.api.metrics import InFlightMiddleware
from app.api.middleware import RequestContextMiddleware, StrictCORSMiddleware
from app.api.ops import router as ops_router
from app.api.problems import install_error_handlers
from app.api.ratelimit import KeyRateLimiter
from app.api.rest import include_v1
from app.core import cursors, tracing
from app.core.config import Settings, get_settings
from app.core.errors import ServiceUnavailable
from app.core.logging import configure_logging
from app.db import engine as db
from app.db.secrets import load_cursor_key
from app.domains import all_domains
from app.events.sequencer import Sequencer, stop_and_wait
from app.worker.runner import Worker

DESCRIPTION = """
Kehu is a headless CRM: customer profiles, interactions and follow-ups, service cases with SLA
timers, feedback and surveys, orders and refunds, and customer analytics (RFM, value tiers,
lifecycle, predicted CLV and churn risk, recommendations), over REST (`/v1`) and GraphQL
(`/graphql`), with an event log and signed webhooks.

**Auth**: `Authorization: Bearer <api key>`; each key carries scopes (`customers:read`, ...).
**Errors**: RFC 9457 `application/problem+json` with a stable `code` and the `request_id`.
**Lists**: `?limit=` (1..100) and `?cursor=` → `{"data": [...], "next_cursor": ...}`.
**Writes**: `Idempotency-Key` on POST; `ETag` on reads and `If-Match` on PATCH/DELETE (412 when stale).
"""

CORS_METHODS = ["GET", "POST", "PATCH", "DELETE", "HEAD"]
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
    "traceparent",
    "tracestate",
]
CORS_EXPOSED_HEADERS = [
    "ETag",
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "Idempotent-Replayed",
    "Location",
    "traceparent",
]


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> FastAPI:
    """Build the app. With ``database_url`` the app owns an engine for its lifetime; without it,
    an engine configured beforehand (``db.configure``) is used, as the tests do."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    tracing.configure(settings.otel_endpoint, settings.otel_service_name)
    # REST and GraphQL share one per-key limiter; it follows the settings this app was built with.
    deps.reset_rate_limiter(
        KeyRateLimiter(settings.rate_limit, settings.rate_limit_storage),
        deps.auth_failure_limiter_for(settings.auth_failure_limit, settings.rate_limit_storage),
    )
    # Cursors are signed with the database's own secret, fetched on first use.
    cursors.use_key_loader(load_cursor_key)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker_task: asyncio.Task[None] | None = None
        worker: Worker | None = None
        if database_url is not None:
            db.configure(
                db.create_engine(
                    database_url,
                    pool_size=settings.db_pool_size,
                    statement_cache=settings.db_statement_cache,
                )
            )
            if settings.run_worker:
                worker = Worker(db.plain_url(database_url))
                worker_task = asyncio.create_task(worker.run())
        sequencer: Sequencer | None = None
        sequencer_task: asyncio.Task[None] | None = None
        dsn = _sequencer_dsn(database_url) if settings.run_sequencer else None
        if dsn is not None:
            sequencer = Sequencer(dsn)
            sequencer_task = asyncio.create_task(sequencer.run())
        await cursors.preload()
        pool_sampling = scrape.start_process_sampling()
        thresholds = gc.get_threshold()
        if settings.gc_threshold:
            # Everything built so far lives as long as the app: out of the collector's way.
            gc.collect()
            gc.freeze()
            gc.set_threshold(settings.gc_threshold, *thresholds[1:])
        try:
            yield
        finally:
            await scrape.stop_process_sampling(pool_sampling)
            if settings.gc_threshold:
                gc.set_threshold(*thresholds)
                gc.unfreeze()
            if sequencer is not None and sequencer_task is not None:
                await stop_and_wait(sequencer, sequencer_task)
            if worker is not None and worker_task is not None:
                worker.stop()
                with suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(worker_task, timeout=10)
            if database_url is not None:
                await db.dispose()

    # Swagger UI and ReDoc served from the package, not a CDN: the docs work on closed networks too.
    app = FastAPIOffline(
        generate_unique_id_function=operation_id,
        title="Kehu",
        version="0.1.0",
        summary="A headless, async CRM service.",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
        openapi_tags=[
            *({"name": d.tag, "description": d.description} for d in all_domains() if d.tag),
            {"name": "ops", "description": "Health, readiness and metrics."},
        ],
    )
    install_error_handlers(app)
    include_v1(app)
    app.include_router(ops_router)
    from app.api.graphql.schema import mount_graphql

    mount_graphql(app, settings)
    app.add_middleware(RequestContextMiddleware)
    # Outside the request middleware: it counts every request, refused bodies (413) too.
    app.add_middleware(InFlightMiddleware)
    if settings.cors_origins:
        # Outside the request middleware, so every answer (errors and 500s included) carries the
        # CORS headers a browser needs to read it.
        app.add_middleware(
            StrictCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )
    _finish_openapi(app)
    return app


def _sequencer_dsn(database_url: str | None) -> str | None:
    """The app's own URL, or (tests, embedding) the URL of the engine configured beforehand;
    None when there is no database at all (the app then runs without a sequencer)."""
    if database_url is not None:
        return db.plain_url(database_url)
    try:
        engine = db.get_engine()
    except ServiceUnavailable:
        structlog.get_logger("kehu").warning("event_sequencer_not_started", reason="no database")
        return None
    return db.plain_url(engine.url.render_as_string(hide_password=False))


def operation_id(route: APIRoute) -> str:
    """The endpoint function's name in camelCase (`get_customer` → `getCustomer`): what generated
    clients call their methods, instead of FastAPI's `get_customer_v1_customers__customer_id__get`."""
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# By the routers that make the document (module-level objects: one key per process in practice).
_DOCUMENTS: dict[tuple[int, ...], dict[str, Any]] = {}


def _finish_openapi(app: FastAPI) -> None:
    """The document is completed once, when first asked for (app/api/openapi.py): what FastAPI's
    generator cannot be told per router without a per-request cost (the bearer key on every /v1
    operation, problem+json errors, X-Request-ID, Location)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            # The document depends only on the routes, which are the same module-level endpoints
            # in every app a process builds (tests build hundreds): generated once (~0.8 s) per
            # set of routes, each app getting its own copy (~30 ms).
            key = (*(id(d.router) for d in all_domains()), id(ops_router))
            document = _DOCUMENTS.get(key)
            if document is None:
                openapi_conventions.finish(generate(), app.routes)
                document = _DOCUMENTS[key] = copy.deepcopy(app.openapi_schema or generate())
            app.openapi_schema = copy.deepcopy(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --workers N` (each worker process builds its own app and engine)."""
    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("KEHU_DATABASE_URL is required with several workers.")
    return create_app(settings, database_url=settings.database_url)
