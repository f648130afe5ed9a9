"""GraphQL over POST, executed straight on graphql-core with strawberry's schema and resolvers.

Strawberry's own request path (its router, a FastAPI dependency for the context, one async context
manager per extension and phase, the extensions' per-field middleware) costs several times what
executing a small query does. POST is what clients use, so this path does only what Kehu needs:

- the document is parsed (with the token limit) and validated (with the depth and alias limits)
  once per distinct query string, then served from a bounded cache;
- it runs with strawberry's execution context class, so resolvers see exactly what they see under
  ``strawberry.Schema.execute``;
- errors get the same treatment as there: ``code_own_errors`` and ``log_errors`` (the schema's
  ``process_errors``), then ``KehuErrors`` rewrites what a client must not see.

GET (queries in the URL, and the GraphiQL page) stays on strawberry's router.
"""

import time
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from inspect import isawaitable
from typing import Any, TypeGuard, cast

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    execute,
    parse,
    specified_rules,
    validate,
)
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from app.api.graphql.context import Context
from app.api.graphql.errors import KehuErrors, code_own_errors, log_errors, needs_rewrite
from app.api.graphql.metrics import observe_operation, sole_operation_name

# Documents longer than this are parsed every time, so odd huge ones cannot fill the cache.
CACHED_QUERY_LENGTH = 20_000
Prepared = tuple[DocumentNode | None, list[GraphQLError]]


class GraphQLExecutor:
    def __init__(
        self,
        schema: strawberry.Schema,
        limit_rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
    ) -> None:
        self._schema = schema._schema
        self._rules = (
            *specified_rules,
            *limit_rules,
            MaybeNullValidationRule,
            OneOfInputValidationRule,
        )
        self._max_tokens = max_tokens
        self._masker = KehuErrors()
        self._cached = lru_cache(maxsize=512)(self._prepare)

    def cache_info(self) -> Any:
        """Hits and misses of the parse-and-validate cache (``functools`` ``CacheInfo``)."""
        return self._cached.cache_info()

    def _prepare(self, query: str) -> Prepared:
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError as error:
            return None, [error]
        return document, validate(self._schema, document, self._rules)

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> dict[str, Any]:
        """The response body of one operation: ``{"data": ...[, "errors": [...]]}``."""
        started = time.perf_counter()
        prepared = self._cached if len(query) <= CACHED_QUERY_LENGTH else self._prepare
        document, errors = prepared(query)
        if document is None or errors:
            result = ExecutionResult(None, list(errors))
        else:
            outcome = execute(
                self._schema,
                document,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
                is_awaitable=cast(
                    "Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable
                ),
                # The keyword strawberry passes for this graphql-core version (it was renamed).
                **execution_context_class_kwargs(StrawberryGraphQLCoreExecutionContext),
            )
            result = await outcome if isawaitable(outcome) else outcome
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in self._client_errors(result.errors)]
        observe_operation(
            operation_name or sole_operation_name(document),
            bool(result.errors),
            time.perf_counter() - started,
        )
        return body

    def _client_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        code_own_errors(errors)
        log_errors(errors, None)
        return [self._masker.anonymise_error(e) if needs_rewrite(e) else e for e in errors]
