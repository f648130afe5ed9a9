"""REST's rendering of errors: RFC 9457 ``application/problem+json``.

The exception handlers that turn a ``KehuError`` (``app/core/errors.py``), a request validation
error, an HTTP error, a lost unique race or a database failure into one problem response, and the
``Problem`` model that documents that body in OpenAPI.
"""

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from app.api.middleware import PROBLEM_CODE_STATE
from app.core.errors import (
    UNAVAILABLE_ERRORS,
    KehuError,
    database_failure,
    problem_body,
    validation_errors,
)

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("kehu.errors")


class FieldError(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"field": "body.email", "message": "not a valid email"}]}
    )

    field: str = Field(description="Dotted path of the offending field, e.g. `body.email`.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem, as every error response carries it (`application/problem+json`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:kehu:problem:validation_failed",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "The request is not valid; see errors[].",
                    "code": "validation_failed",
                    "request_id": "0f9c2a7e4b1d4c8e9a6f3b2d1c0e5f47",
                    "errors": [{"field": "body.email", "message": "not a valid email"}],
                },
                {
                    "type": "urn:kehu:problem:customer_not_found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "No customer 01890a5d-ac96-774b-bcce-b302099a8057.",
                    "code": "customer_not_found",
                    "request_id": "0f9c2a7e4b1d4c8e9a6f3b2d1c0e5f47",
                },
            ]
        }
    )

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


class ProblemResponse(JSONResponse):
    """``application/problem+json``, rendered ASCII-only: a detail or field path that echoes a
    client's string (a lone surrogate, say) can never make the error itself fail to encode.

    As it is sent, it leaves its ``code`` in the request's state for the access line."""

    media_type = PROBLEM_JSON

    def __init__(
        self,
        content: Mapping[str, Any],
        status_code: int,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.code: str | None = content.get("code")
        super().__init__(content, status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})[PROBLEM_CODE_STATE] = self.code
        await super().__call__(scope, receive, send)


def problem_response(
    status: int,
    code: str,
    detail: str,
    request_id: str | None,
    errors: Sequence[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    return ProblemResponse(
        problem_body(status, code, detail, request_id, errors, extensions=extensions),
        status_code=status,
        headers=dict(headers or {}),
    )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _kehu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KehuError)
    return problem_response(
        exc.status,
        exc.code,
        exc.detail,
        _request_id(request),
        exc.errors,
        exc.headers,
        exc.extensions,
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
    for unavailable in (*UNAVAILABLE_ERRORS, DBAPIError):
        app.add_exception_handler(unavailable, _database_error)
    # Anything else is answered by RequestContextMiddleware (app/api/middleware.py): inside it, the
    # 500 carries X-Request-ID and its log line the request id, and nothing is re-raised.
