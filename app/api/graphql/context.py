"""The GraphQL request context: the authenticated caller, rate limiting and per-request loaders.

Loaders are made on first use, one per factory (a domain's ``loaders.py`` function taking the
caller), so a request that needs none builds none.

``get_context`` is a FastAPI dependency of the GraphQL routes, so a missing or invalid key (401) or
an exhausted rate limit (429) raises a ``KehuError`` before any GraphQL runs, and the app's error
handler answers with ``application/problem+json`` exactly as on /v1. A request is charged per root
field of the operation it runs (``operation_cost``): 1 per query field, 5 per mutation field.
"""

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from fastapi import Request, Response
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from app.api.deps import authenticate, rate_limiter
from app.core.auth import Caller
from app.core.errors import Unauthorized
from app.core.http import InvalidJSON, load_json

LoaderT = TypeVar("LoaderT")


class Context(BaseContext):
    def __init__(self, caller: Caller | None) -> None:
        super().__init__()
        self._caller = caller
        self._loaders: dict[Callable[[Caller], Any], Any] = {}

    @property
    def caller(self) -> Caller:
        if self._caller is None:  # only the GraphiQL page is served without a key
            raise Unauthorized()
        return self._caller

    def loader(self, factory: Callable[[Caller], LoaderT]) -> LoaderT:
        """This request's loader made by ``factory`` (made on first use)."""
        if factory not in self._loaders:
            self._loaders[factory] = factory(self.caller)
        loader: LoaderT = self._loaders[factory]
        return loader


GraphQLInfo = Info[Context, None]


def _wants_graphiql(request: Request) -> bool:
    """A browser asking for the GraphiQL page: a GET without a query that accepts HTML."""
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


MUTATION_FIELD_COST = 5
QUERY_FIELD_COST = 1


def _root_response_keys(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    keys: set[str],
    expanded: set[str],
) -> None:
    """The response keys (alias or field name) at the root, through fragments, as execution
    collects them: a field requested twice under the same key runs once and is counted once."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            keys.add((selection.alias or selection.name).value)
        elif isinstance(selection, InlineFragmentNode):
            _root_response_keys(selection.selection_set, fragments, keys, expanded)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None:
                keys.add("..." + name)  # unknown: validation refuses it, still one request
            elif name not in expanded:
                expanded.add(name)
                _root_response_keys(fragment.selection_set, fragments, keys, expanded)


@lru_cache(maxsize=1024)
def _operation_costs(query: str) -> dict[str | None, int] | None:
    """Cost of each operation of a document (by name; None for an anonymous one); None when the
    document does not parse. Cached per query string: clients send the same few queries."""
    try:
        document = parse(query, max_tokens=10_000)
    except GraphQLError:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    costs: dict[str | None, int] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            keys: set[str] = set()
            _root_response_keys(definition.selection_set, fragments, keys, set())
            weight = (
                MUTATION_FIELD_COST
                if definition.operation == OperationType.MUTATION
                else QUERY_FIELD_COST
            )
            name = definition.name.value if definition.name else None
            costs[name] = max(1, len(keys)) * weight
    return costs


def operation_cost(query: object, operation_name: object) -> int:
    """What one GraphQL request counts against the rate limit: each root field of the operation
    that will run weighs 1 in a query and 5 in a mutation; anything that cannot run costs 1."""
    if not isinstance(query, str):
        return 1
    # Only documents of a sane size are cached, so odd huge ones cannot fill memory.
    costs = _operation_costs(query) if len(query) <= 20_000 else _operation_costs.__wrapped__(query)
    if not costs:
        return 1
    if isinstance(operation_name, str):
        return costs.get(operation_name, 1)
    return next(iter(costs.values())) if len(costs) == 1 else 1


async def _request_cost(request: Request) -> int:
    if request.method == "GET":
        params = request.query_params
        return operation_cost(params.get("query"), params.get("operationName"))
    if not request.headers.get("content-type", "").startswith("application/json"):
        return 1
    try:
        body = load_json(await request.body())
    except InvalidJSON:
        return 1  # the transport refuses it with a 400 before anything runs
    if not isinstance(body, dict):
        return 1
    return operation_cost(body.get("query"), body.get("operationName"))


async def get_context(request: Request, response: Response) -> Context:
    if _wants_graphiql(request):
        return Context(None)
    caller = await authenticate(request)
    cost = await _request_cost(request)
    response.headers.update(await rate_limiter().hit(str(caller.key_id), cost=cost))
    return Context(caller)
