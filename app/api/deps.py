"""The REST request pipeline: authenticate, rate-limit, check the request's shape, open the conn,
honour Idempotency-Key and If-None-Match.

Every /v1 route uses ``KehuRoute``. Reads get a read conn; writes get one ``unit_of_work()`` that
commits only after the endpoint has returned, and before the response leaves, so a client never sees a
success that was not stored. A POST with an ``Idempotency-Key`` stores its response in that same
transaction, so a retry after any failure either replays it or runs the request for the first time.

The shape checks apply to every route alike: a query parameter the route does not declare is a 400
(a typo such as ``?contry=CN`` must not silently list everything), a body that is not JSON a 415,
and a JSON body Python cannot read (invalid UTF-8, nested past the parser's recursion) a 422.
"""

import json
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.api.handler import lean_handler
from app.api.middleware import CALLER_STATE
from app.api.openapi import document_route
from app.api.ratelimit import KeyRateLimiter
from app.core.auth import Caller, hash_key
from app.core.config import get_settings
from app.core.errors import (
    BadRequest,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.core.http import InvalidJSON, is_json_media_type, load_json_body, none_match
from app.db import Connection, read_connection, unit_of_work
from app.domains import api_keys as apikeys
from app.domains import idempotency

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEY_CACHE_SECONDS = 5.0


class _CallerCache:
    """Resolved keys for a few seconds, so a hot key costs no query per request. Revocation takes
    effect within that time in every process (at once in the one that revoked it)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Caller]] = {}

    def get(self, key_hash: str) -> Caller | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, caller: Caller) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + _KEY_CACHE_SECONDS, caller)

    def clear(self) -> None:
        """Forget every resolved key (tests that rebuild the app or its database)."""
        self._entries.clear()

    def forget(self, key_id: object) -> None:
        for key_hash, (_, caller) in list(self._entries.items()):
            if caller.key_id == key_id:
                del self._entries[key_hash]


caller_cache = _CallerCache()
# Hashes of keys this process has seen valid: still looked up from an address that is throttled
# for failed lookups, so a client's own key keeps working while guessed keys are refused unread.
_known_valid: set[str] = set()
_limiter: KeyRateLimiter | None = None
_auth_failures: KeyRateLimiter | None = None


def rate_limiter() -> KeyRateLimiter:
    global _limiter
    if _limiter is None:
        settings = get_settings()
        _limiter = KeyRateLimiter(settings.rate_limit, settings.rate_limit_storage)
    return _limiter


def auth_failure_limiter() -> KeyRateLimiter:
    """Failed key lookups per client address."""
    global _auth_failures
    if _auth_failures is None:
        settings = get_settings()
        _auth_failures = auth_failure_limiter_for(
            settings.auth_failure_limit, settings.rate_limit_storage
        )
    return _auth_failures


def auth_failure_limiter_for(rate: str, storage_uri: str) -> KeyRateLimiter:
    return KeyRateLimiter(
        rate, storage_uri, subject="requests with invalid API keys", metric_key="by_address"
    )


def reset_rate_limiter(
    limiter: KeyRateLimiter | None = None, auth_failures: KeyRateLimiter | None = None
) -> None:
    global _limiter, _auth_failures
    _limiter = limiter
    _auth_failures = auth_failures
    _known_valid.clear()


def _client_address(request: Request) -> str:
    return "auth-failures:" + (request.client.host if request.client else "unknown")


def _public_address(request: Request) -> str:
    """The rate-limit key of a request without an API key: its client address."""
    return "public:" + (request.client.host if request.client else "unknown")


async def authenticate(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    key_hash = hash_key(presented.strip())
    caller = caller_cache.get(key_hash)
    if caller is None:
        address = _client_address(request)
        if key_hash not in _known_valid:
            # Too many failed lookups from this address: unknown keys get 429, not a query.
            await auth_failure_limiter().check(address)
        async with read_connection() as conn:
            caller = await apikeys.authenticate(conn, presented.strip())
        if caller is None:
            _known_valid.discard(key_hash)
            await auth_failure_limiter().hit(address)
            raise Unauthorized(
                "The API key is not valid or has been revoked.", code="invalid_api_key"
            )
        if len(_known_valid) > 10_000:
            _known_valid.clear()
        _known_valid.add(key_hash)
        caller_cache.put(key_hash, caller)
    # For the access line: which key called (REST and GraphQL both authenticate here).
    request.scope.setdefault("state", {})[CALLER_STATE] = caller
    return caller


def _idempotency_key(request: Request, stores_responses: bool) -> str | None:
    if request.method != "POST":
        return None
    return idempotency.requested_key(
        request.headers.get(idempotency.HEADER), stores_responses=stores_responses
    )


async def _fingerprint(request: Request) -> str:
    return idempotency.fingerprint(
        request.method, request.url.path, request.url.query, body=await request.body()
    )


def _answer(response: Response) -> idempotency.Answer:
    return idempotency.Answer(response.status_code, response.headers, bytes(response.body))


def _replay(record: idempotency.StoredAnswer) -> Response:
    headers = dict(record.response_headers)
    headers["Idempotent-Replayed"] = "true"
    media_type = headers.pop("content-type", None)
    return Response(
        content=record.response_body,
        status_code=record.status_code,
        headers=headers,
        media_type=media_type,
    )


async def _run_write(
    request: Request,
    caller: Caller,
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
    stores_responses: bool = True,
) -> Response:
    """One unit of work; Idempotency-Key's decisions are the idempotency service's."""
    key = _idempotency_key(request, stores_responses)
    async with unit_of_work() as conn:
        request.state.conn = conn
        return await idempotency.run_once(
            conn,
            caller.key_id,
            key,
            lambda: _fingerprint(request),
            lambda: handler(request),
            answer=_answer,
            replay=_replay,
        )


def query_names(dependant: Dependant) -> frozenset[str]:
    """Every query parameter name a route accepts (aliases such as ``created_at[gte]``), from its
    own parameters and those of its dependencies."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        pending.extend(current.dependencies)
        for field in current.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(f.alias or n for n, f in annotation.model_fields.items())
            else:
                names.add(field.alias)
    return frozenset(names)


def _check_query(request: Request, allowed: frozenset[str]) -> None:
    unknown = sorted({name for name in request.query_params if name not in allowed})
    if unknown:
        shown = ", ".join(f"`{json.dumps(n)[1:-1][:100]}`" for n in unknown[:10])
        known = ", ".join(f"`{n}`" for n in sorted(allowed)) or "none"
        raise BadRequest(
            f"Unknown query parameter(s): {shown}. This operation takes: {known}.",
            code="unknown_parameter",
        )


async def _read_json_body(request: Request) -> None:
    """Check and parse a JSON body once, before FastAPI reads it (it uses what is parsed here)."""
    body = await request.body()
    if not body:
        return  # FastAPI answers 422: the body is required
    if not is_json_media_type(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            "Send the body as JSON, with `Content-Type: application/json`.",
            headers={"Accept-Post": "application/json"} if request.method == "POST" else None,
        )
    try:
        request._json, request.state.json_plain = load_json_body(body)
    except InvalidJSON as exc:
        raise ValidationFailed(
            "The body is not valid JSON; see errors[].",
            errors=[{"field": "body", "message": str(exc)}],
        ) from None


def _not_modified(request: Request, response: Response) -> Response | None:
    current = response.headers.get("etag")
    if response.status_code != 200 or current is None:
        return None
    if not none_match(request.headers.get("if-none-match"), current):
        return None
    return Response(status_code=304, headers={"ETag": current})


# The callers of routes that take no API key share no key id: each path is its own (a survey
# link's token is in its path), so Idempotency-Key is scoped to it.
_PUBLIC_NAMESPACE = uuid.UUID("0193a1c0-7e57-7b1c-9d2e-5a6b7c8d9e0f")


def public_caller(request: Request) -> Caller:
    """Who calls a route that needs no API key (its path holds its own credential): no scopes, and
    a key id of its own path."""
    return Caller(
        key_id=uuid.uuid5(_PUBLIC_NAMESPACE, request.url.path), name="public", scopes=frozenset()
    )


class KehuRoute(APIRoute):
    # Whether a POST's response may be stored for Idempotency-Key replays; off for routes whose
    # responses must never be stored (a new API key's secret).
    stores_responses = True
    # Whether the route needs an API key; off for the few whose path carries its own credential
    # (a survey link). Those are rate-limited per client address.
    requires_key = True
    # A POST that only reads (a search whose question is a body): it runs on a read connection,
    # as a GET does, and takes no Idempotency-Key (there is nothing to do twice).
    reads_only = False

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # What the pipeline does for this route, in the OpenAPI document (app/api/openapi.py).
        document_route(self, stores_responses=self.stores_responses, requires_key=self.requires_key)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = lean_handler(self, request_scope, super().get_route_handler())
        allowed_query = query_names(self.dependant)  # once per route, not per request
        takes_json = self.body_field is not None
        requires_key = self.requires_key
        reads_only = self.reads_only

        async def route_handler(request: Request) -> Response:
            # No /v1 operation takes cookies (keys come in Authorization), but FastAPI parses the
            # Cookie header for every dependency it solves; an empty jar up front skips that.
            request._cookies = {}
            if requires_key:
                caller = await authenticate(request)
                limit_headers = await rate_limiter().hit(str(caller.key_id))
            else:
                caller = public_caller(request)
                limit_headers = await rate_limiter().hit(
                    _public_address(request), metric_key="anonymous"
                )
            request.state.caller = caller
            if request.scope["query_string"]:
                _check_query(request, allowed_query)
            if takes_json:
                await _read_json_body(request)
            if reads_only or request.method in READ_METHODS:
                async with read_connection() as conn:
                    request.state.conn = conn
                    response = await handler(request)
                if request.method == "GET":
                    response = _not_modified(request, response) or response
            else:
                response = await _run_write(request, caller, handler, self.stores_responses)
            response.headers.update(limit_headers)
            return response

        return route_handler


@dataclass(frozen=True, slots=True)
class RequestScope:
    """What the pipeline gives an endpoint: who is calling, and the connection to work on (a read
    connection, or the request's one transaction for writes)."""

    caller: Caller
    conn: Connection
    # The JSON body holds nothing ``hostile_json`` refuses (``app.core.http.load_json_body``), so
    # models validated from it may skip their walk (``app.core.schemas.json_checked``).
    body_plain: bool = False


async def request_scope(request: Request) -> RequestScope:
    return RequestScope(
        request.state.caller, request.state.conn, getattr(request.state, "json_plain", False)
    )


# The one request dependency of every /v1 endpoint.
ScopeDep = Annotated[RequestScope, Depends(request_scope)]
