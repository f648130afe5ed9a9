"""The error hierarchy and its one rendering: RFC 9457 ``application/problem+json``.

Services raise ``KehuError`` subclasses; REST renders them here and GraphQL maps the same ``code``
into ``extensions.code``. Nothing below ever puts a traceback, SQL or driver name into a response.
"""

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from asyncpg.exceptions import (  # type: ignore[import-untyped]
    CannotConnectNowError,
    TooManyConnectionsError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("kehu.errors")


class KehuError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = list(errors or [])
        self.headers = dict(headers or {})


class BadRequest(KehuError):
    status, code = 400, "bad_request"


class Unauthorized(KehuError):
    status, code = 401, "unauthorized"

    def __init__(self, detail: str = "A valid API key is required.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="kehu"'})
        super().__init__(detail, **kwargs)


class Forbidden(KehuError):
    status, code = 403, "forbidden"


class NotFound(KehuError):
    status, code = 404, "not_found"


class Conflict(KehuError):
    status, code = 409, "conflict"


class MethodNotAllowed(KehuError):
    status, code = 405, "method_not_allowed"


class PreconditionFailed(KehuError):
    status, code = 412, "precondition_failed"


class PayloadTooLarge(KehuError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(KehuError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(KehuError):
    status, code = 422, "validation_failed"


class RateLimited(KehuError):
    status, code = 429, "rate_limited"


class ServiceUnavailable(KehuError):
    status, code = 503, "service_unavailable"


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `body.email`.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem, as every error response carries it (`application/problem+json`)."""

    type: str = Field(examples=["urn:kehu:problem:customer_not_found"])
    title: str
    status: int
    detail: str
    code: str = Field(description="A stable slug to branch on.")
    request_id: str | None
    errors: list[FieldError] | None = Field(
        default=None, description="Per-field messages on validation errors."
    )


def problem_doc(description: str) -> dict[str, Any]:
    """An OpenAPI `responses` entry for an error, documented as application/problem+json."""
    return {"model": Problem, "description": description}


# The errors any authenticated /v1 operation may answer with.
COMMON_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problem_doc("A malformed header, query or cursor."),
    401: problem_doc("No valid API key."),
    403: problem_doc("The API key lacks a required scope."),
    404: problem_doc("The resource does not exist."),
    409: problem_doc("A conflicting concurrent request or unique value."),
    413: problem_doc("The request body is over 1 MiB."),
    415: problem_doc("The request body is not JSON (`Content-Type: application/json`)."),
    422: problem_doc("The request is not valid; see `errors`."),
    429: problem_doc("Rate limit exceeded; see `Retry-After`."),
}


def problem_body(
    status: int,
    code: str,
    detail: str,
    request_id: str | None,
    errors: Sequence[Mapping[str, str]] = (),
    title: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:kehu:problem:{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = [dict(e) for e in errors]
    return body


class ProblemResponse(JSONResponse):
    """``application/problem+json``, rendered ASCII-only: a detail or field path that echoes a
    client's string (a lone surrogate, say) can never make the error itself fail to encode."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def problem_response(
    status: int,
    code: str,
    detail: str,
    request_id: str | None,
    errors: Sequence[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return ProblemResponse(
        problem_body(status, code, detail, request_id, errors),
        status_code=status,
        headers=dict(headers or {}),
    )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _field_path(loc: Sequence[Any]) -> str:
    # FastAPI prefixes locations with where the value came from ("body", "query", ...).
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "body"


def validation_errors(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {"field": _field_path(err.get("loc", ())), "message": str(err.get("msg", "invalid"))}
        for err in raw
    ]


async def _kehu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KehuError)
    return problem_response(
        exc.status, exc.code, exc.detail, _request_id(request), exc.errors, exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        422,
        "validation_failed",
        "The request is not valid; see errors[].",
        _request_id(request),
        validation_errors(exc.errors()),
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route matches {request.method} {request.url.path}."
    return problem_response(
        exc.status_code,
        _HTTP_CODES.get(exc.status_code, "http_error"),
        detail,
        _request_id(request),
        headers=exc.headers,
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A unique or foreign-key race lost to a concurrent writer; the request changed nothing.
    log.warning("integrity_conflict", path=request.url.path)
    return problem_response(
        409,
        "conflict",
        "The request conflicts with data written concurrently; fetch the current state and retry.",
        _request_id(request),
    )


# SQLSTATEs that mean the schema is older than the code: the database is not migrated yet.
_SCHEMA_MISSING = frozenset({"42P01", "42703", "42883", "42704"})
# The database named in the URL does not exist (yet), or refuses connections while starting up.
_NO_DATABASE = frozenset({"3D000", "57P03"})
_UNAVAILABLE_ERRORS = (
    PoolTimeout,
    OperationalError,
    InterfaceError,
    ConnectionError,
    CannotConnectNowError,
    TooManyConnectionsError,
)


def database_failure(exc: BaseException) -> KehuError | None:
    """The problem a database failure means for a client (503), or None if it is not one.

    Used by REST's handlers and GraphQL's error rewriting alike."""
    sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    if sqlstate in _SCHEMA_MISSING:
        return ServiceUnavailable(
            "The database schema is not at the latest migration; run `kehu migrate`.",
            code="migrations_pending",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, _UNAVAILABLE_ERRORS) or sqlstate in _NO_DATABASE:
        return ServiceUnavailable(
            "The database is not available right now; retry shortly.",
            code="database_unavailable",
            headers={"Retry-After": "2"},
        )
    return None


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    problem = database_failure(exc)
    if problem is None:
        raise exc  # RequestContextMiddleware answers it as a 500 with the request id
    # The pool had no free connection in time, the server could not be reached or went away, or
    # the schema is behind the code.
    log.error(problem.code, path=request.url.path, error=type(exc).__name__)
    return problem_response(
        problem.status,
        problem.code,
        problem.detail,
        _request_id(request),
        headers=problem.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KehuError, _kehu_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    # Connection failures surface unwrapped from asyncpg's connect; failures on a live connection come
    # wrapped by SQLAlchemy (DBAPIError covers a schema that is not migrated yet).
    for unavailable in (*_UNAVAILABLE_ERRORS, DBAPIError):
        app.add_exception_handler(unavailable, _database_error)
    # Anything else is answered by RequestContextMiddleware (app/api/middleware.py): inside it, the
    # 500 carries X-Request-ID and its log line the request id, and nothing is re-raised.
