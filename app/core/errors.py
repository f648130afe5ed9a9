"""The error hierarchy and the body of its one rendering, RFC 9457 problem details.

Services raise ``KehuError`` subclasses. REST renders them as ``application/problem+json``
(``app/api/problems.py``: the handlers and the OpenAPI model) and GraphQL maps the same ``code`` into
``extensions.code``. Framework-free: no FastAPI, Starlette or Strawberry here (``tests/test_layers.py``).
Nothing below ever puts a traceback, SQL or driver name into a response.
"""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from asyncpg.exceptions import (  # type: ignore[import-untyped]
    CannotConnectNowError,
    TooManyConnectionsError,
)
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


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
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = list(errors or [])
        self.headers = dict(headers or {})
        # Extension members of the problem (RFC 9457, 3.2), e.g. the allowed targets of an
        # illegal case transition; in GraphQL errors' ``extensions`` too. Never named like a
        # standard member.
        self.extensions = dict(extensions or {})


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


def problem_body(
    status: int,
    code: str,
    detail: str,
    request_id: str | None,
    errors: Sequence[Mapping[str, str]] = (),
    title: str | None = None,
    extensions: Mapping[str, Any] | None = None,
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
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return body


def batch_item_problem(exc: KehuError | ValidationError) -> dict[str, Any]:
    """The problem object of one failed item of a batch (its ``error``): a validation error or a
    service error, with the item's fields named as in a body of its own (``email``, not
    ``body.email``) and no ``request_id`` (the batch's response carries it)."""
    if isinstance(exc, ValidationError):
        body = problem_body(
            422,
            "validation_failed",
            "The item is not valid; see errors[].",
            None,
            validation_errors(exc.errors()),
        )
    else:
        errors = [{**e, "field": e["field"].removeprefix("body.")} for e in exc.errors]
        body = problem_body(exc.status, exc.code, exc.detail, None, errors, None, exc.extensions)
    body.pop("request_id", None)
    return body


def _field_path(loc: Sequence[Any]) -> str:
    # FastAPI prefixes locations with where the value came from ("body", "query", ...).
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "body"


def validation_errors(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {"field": _field_path(err.get("loc", ())), "message": str(err.get("msg", "invalid"))}
        for err in raw
    ]


# SQLSTATEs that mean the schema is older than the code: the database is not migrated yet.
_SCHEMA_MISSING = frozenset({"42P01", "42703", "42883", "42704"})
# The database named in the URL does not exist (yet), or refuses connections while starting up.
_NO_DATABASE = frozenset({"3D000", "57P03"})
UNAVAILABLE_ERRORS = (
    PoolTimeout,
    OperationalError,
    InterfaceError,
    ConnectionError,
    CannotConnectNowError,
    TooManyConnectionsError,
)


def database_failure(exc: BaseException) -> KehuError | None:
    """The problem a database failure means for a client (503), or None if it is not one.

    Used by REST's handlers (``app/api/problems.py``) and GraphQL's error rewriting alike."""
    sqlstate = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    if sqlstate in _SCHEMA_MISSING:
        return ServiceUnavailable(
            "The database schema is not at the latest migration; run `kehu migrate`.",
            code="migrations_pending",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, UNAVAILABLE_ERRORS) or sqlstate in _NO_DATABASE:
        return ServiceUnavailable(
            "The database is not available right now; retry shortly.",
            code="database_unavailable",
            headers={"Retry-After": "2"},
        )
    return None
