"""ASGI middleware: request ids, access logs, the request body limit, HEAD, and the last-resort 500."""

import json
import os
import re
import time
from typing import Any

import structlog
from fastapi import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import tracing
from app.core.auth import Caller
from app.core.errors import problem_body
from app.core.metrics import REQUEST_SECONDS

log = structlog.get_logger("kehu.access")
errors_log = structlog.get_logger("kehu.errors")
# What the pipeline leaves for the access line in the request's state (``scope["state"]``, which
# every copy of the scope shares): the ``Caller`` whose API key authenticated the request
# (app/api/deps.py), and the ``code`` of the problem response it was answered with
# (app/api/problems.py).
CALLER_STATE = "authenticated_caller"
PROBLEM_CODE_STATE = "problem_code"
_timers: dict[tuple[str, str, int], Any] = {}


def _request_timer(method: str, route: str, status: int) -> Any:
    """The histogram child of one series, kept here: ``labels()`` checks and locks on every call."""
    timer = _timers.get((method, route, status))
    if timer is None:
        timer = REQUEST_SECONDS.labels(method, route, str(status))
        if len(_timers) < 4096:  # methods are client input; the registry has its own guard
            _timers[(method, route, status)] = timer
    return timer


_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_BODY_BYTES = 1024 * 1024


async def _send_problem(
    send: Send,
    status: int,
    code: str,
    detail: str,
    request_id: str,
    *,
    id_header: bool = True,
    traceparent: bytes | None = None,
) -> None:
    """``id_header``: add X-Request-ID (False when ``send`` adds it itself)."""
    body = json.dumps(problem_body(status, code, detail, request_id)).encode("ascii")
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if id_header:
        headers.append((b"x-request-id", request_id.encode()))
    if traceparent is not None:
        headers.append((b"traceparent", traceparent))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope) -> str | None:
    """The matched route with its parameters named (`/v1/customers/{customer_id}`); None when no
    route matched."""
    route = scope.get("route")
    if route is not None:
        # FastAPI records its own routes, which know their template only below the prefix they
        # were included under (`/v1`): the prefix is what the path holds before the segments the
        # route's template matched (a parameter spans more than one only with `:path`).
        own: str = route.path_format
        params = scope.get("path_params", {})
        depth = own.count("/") + sum(str(value).count("/") for value in params.values())
        path: str = scope.get("path", "")
        return (path.rsplit("/", depth)[0] if depth else path) + own
    if "endpoint" not in scope:
        return None  # nothing matched: a 404, or the redirect to the path with(out) its "/"
    if "app_root_path" in scope:  # a mounted app (static files), at its mount path
        return str(scope.get("root_path", "")) + "/{path}"
    # A plain Starlette route (POST /graphql), which FastAPI does not record; without parameters
    # it matches its own path only.
    return None if scope.get("path_params") else str(scope.get("path", ""))


def _logged_path(scope: Scope, route: str | None) -> str:
    """The path as logs show it: a key-less route's path is its credential (a survey link's
    token), so those log their template instead."""
    if route is not None and getattr(scope.get("route"), "requires_key", True) is False:
        return route
    path: str = scope.get("path", "")
    return path


class RequestContextMiddleware:
    """Gives every request an id (or keeps a sane incoming X-Request-ID), binds it to the logs,
    returns it as X-Request-ID, logs one access line, and refuses bodies over 1 MiB with 413.

    HEAD is answered wherever GET is: the app sees a GET, and the client gets its status and
    headers without the body (so no HEAD operations appear in the OpenAPI document either).

    An exception nothing else handled becomes a 500 problem here, inside the request context: it
    carries X-Request-ID, is logged once with the request id, and is not re-raised to the server
    (which would drop the connection and log a second traceback)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_ID.match(incoming) else os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        request_trace = tracing.server_trace(
            headers, scope.get("method", ""), request_id, _route_template
        )
        structlog.contextvars.bind_contextvars(
            request_id=request_id, trace_id=request_trace.trace_id
        )
        raw_id = request_id.encode("latin-1")
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            state[PROBLEM_CODE_STATE] = "payload_too_large"
            await _send_problem(
                send,
                413,
                "payload_too_large",
                "Request bodies are limited to 1 MiB.",
                request_id,
                traceparent=request_trace.traceparent,
            )
            self._log(scope, 413, started, scope.get("method", ""))
            request_trace.end(413, scope)
            return

        is_head = scope.get("method") == "HEAD"
        app_scope: Scope = {**scope, "method": "GET"} if is_head else scope
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException, because FastAPI turns any other error raised while it
                    # reads the body into "400 There was an error parsing the body".
                    raise HTTPException(413, "Request bodies are limited to 1 MiB.")
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                # Appended as a raw header: nothing upstream sets X-Request-ID.
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", raw_id),
                    (b"traceparent", request_trace.traceparent),
                ]
            elif message["type"] == "http.response.body" and is_head:
                message = {**message, "body": b""}  # same headers (Content-Length too), no body
            await send(message)

        try:
            await self.app(app_scope, limited_receive, send_with_id)
        except Exception as exc:
            status_holder["status"] = 500
            errors_log.error(
                "unhandled_exception",
                exc_info=exc,
                method=scope.get("method"),
                path=_logged_path(app_scope, _route_template(app_scope)),
            )
            if not status_holder["started"]:
                state[PROBLEM_CODE_STATE] = "internal_error"
                await _send_problem(
                    send_with_id,
                    500,
                    "internal_error",
                    "An unexpected error occurred; it has been logged with this request id.",
                    request_id,
                    id_header=False,
                )
        finally:
            self._log(app_scope, int(status_holder["status"]), started, scope.get("method", ""))
            request_trace.end(int(status_holder["status"]), app_scope)
            structlog.contextvars.unbind_contextvars("request_id", "trace_id")

    @staticmethod
    def _log(scope: Scope, status: int, started: float, method: str) -> None:
        path = scope.get("path", "")
        if path in ("/healthz", "/metrics"):
            return
        elapsed = time.perf_counter() - started
        route = _route_template(scope)
        _request_timer(method, route or "unmatched", status).observe(elapsed)
        state = scope["state"]
        caller: Caller | None = state.get(CALLER_STATE)
        log.info(
            "request",
            method=method,
            path=_logged_path(scope, route),
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            api_key_id=str(caller.key_id) if caller is not None else None,
            api_key_name=caller.name if caller is not None else None,
            problem_code=state.get(PROBLEM_CODE_STATE),
        )


class StrictCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that a response to an origin not allowed carries no CORS headers
    at all (Starlette still adds Access-Control-Expose-Headers), only ``Vary: Origin``."""

    async def simple_response(
        self, scope: Scope, receive: Receive, send: Send, request_headers: Headers
    ) -> None:
        if self.is_allowed_origin(request_headers.get("Origin", "")):
            await super().simple_response(scope, receive, send, request_headers)
            return

        async def vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
            await send(message)

        await self.app(scope, receive, vary)
