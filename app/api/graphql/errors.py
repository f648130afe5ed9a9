"""GraphQL errors: the same ``KehuError`` codes as REST in ``extensions``, everything else masked.

Resolvers simply raise (``KehuError`` from services, ``ValidationFailed`` from input checks).
This extension rewrites the result's errors once, after the operation: a ``KehuError`` becomes its
detail with ``extensions: {code, status[, errors]}``; GraphQL's own parse and validation errors
(no original exception) keep their message and get ``code`` ``invalid_query`` (or
``query_too_complex`` from the depth, alias and token limits, or ``invalid_variables`` when a
variable's value is refused) in ``code_own_errors``, which runs for
every error, parse errors included; any other exception becomes "Unexpected error." with code
``internal_error`` and is logged, so no SQL, driver name or traceback reaches a client.
"""

from collections.abc import Mapping
from typing import Any

import structlog
from graphql.error import GraphQLError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from app.core.errors import KehuError, ValidationFailed, database_failure, validation_errors

log = structlog.get_logger("kehu.graphql")
UNEXPECTED = "Unexpected error."
CONFLICT = (
    "The request conflicts with data written concurrently; fetch the current state and retry."
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_loc(error: Mapping[str, Any]) -> dict[str, Any]:
    loc = tuple(_camel(p) if isinstance(p, str) else p for p in error.get("loc", ()))
    return {**error, "loc": loc}


def invalid_input(exc: ValidationError, prefix: str = "input") -> ValidationFailed:
    """A pydantic error on a GraphQL input, with camelCase field paths (``input.firstName``)."""
    raw = [_camel_loc({**e, "loc": (prefix, *e.get("loc", ()))}) for e in exc.errors()]
    return ValidationFailed(
        "The input is not valid; see extensions.errors.", errors=validation_errors(raw)
    )


def _graphql_field(field: str) -> str:
    """A service's REST-style path (`body.phone`) as GraphQL names it (`input.phone`)."""
    head, dot, rest = field.partition(".")
    if head == "body" and dot:
        return "input." + ".".join(_camel(part) for part in rest.split("."))
    return field


def _extensions(exc: KehuError) -> dict[str, Any]:
    extensions: dict[str, Any] = {**exc.extensions, "code": exc.code, "status": exc.status}
    if exc.errors:
        extensions["errors"] = [
            {**e, "field": _graphql_field(str(e.get("field", "")))} for e in exc.errors
        ]
    return extensions


def _is_variable_error(error: GraphQLError) -> bool:
    """A variable's value refused before execution (graphql-core's coercion: wrong type, missing,
    or a scalar's own parser raising); the client's mistake, whatever the original exception."""
    return error.path is None and error.message.startswith("Variable '$")


def _is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return (
        original is not None
        and not isinstance(original, KehuError | GraphQLError)
        and not _is_variable_error(error)
    )


def _is_graphql_own(error: GraphQLError) -> bool:
    """A parse, validation, limit or variable error from GraphQL itself, not yet given a code."""
    own = error.original_error is None or _is_variable_error(error)
    return own and "code" not in (error.extensions or {})


_LIMIT_MESSAGES = ("exceeds maximum operation depth", "aliases found", "tokens")


def _own_error_code(message: str) -> str:
    if message.startswith("Variable '$"):
        return "invalid_variables"
    return "query_too_complex" if any(m in message for m in _LIMIT_MESSAGES) else "invalid_query"


def needs_rewrite(error: GraphQLError) -> bool:
    original = error.original_error
    return isinstance(original, KehuError) or _is_unexpected(error)


class KehuErrors(MaskErrors):
    """MaskErrors that knows Kehu's error codes: every error raised by a resolver is rewritten, a
    ``KehuError`` into its own detail and code, anything else into the masked message."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=needs_rewrite, error_message=UNEXPECTED)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, KehuError):
            message, extensions = original.detail, _extensions(original)
        elif isinstance(original, IntegrityError):  # as REST: a race lost to a concurrent writer
            message = CONFLICT
            extensions = {"code": "conflict", "status": 409}
        elif original is not None and (problem := database_failure(original)) is not None:
            message, extensions = problem.detail, _extensions(problem)
        else:
            message, extensions = self.error_message, {"code": "internal_error", "status": 500}
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )


def code_own_errors(errors: list[GraphQLError]) -> None:
    """Give parse errors (which end the request before extensions see a result) their code."""
    for error in errors:
        if _is_graphql_own(error):
            error.extensions = {
                **(error.extensions or {}),
                "code": _own_error_code(error.message),
                "status": 400,
            }


def log_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Log what a client cannot see: unexpected exceptions, with their traceback."""
    for error in errors:
        if isinstance(error.original_error, IntegrityError):
            log.warning("graphql_integrity_conflict", path=error.path)
        elif _is_unexpected(error):
            log.error(
                "graphql_unexpected_error",
                path=error.path,
                operation=execution_context.operation_name if execution_context else None,
                exc_info=error.original_error,
            )
