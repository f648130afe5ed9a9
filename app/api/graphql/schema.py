"""The GraphQL schema at /graphql: the same keys, scopes, services and error codes as /v1."""

from collections.abc import Callable
from functools import lru_cache, partial

import strawberry
from fastapi import FastAPI
from graphql import ASTValidationRule
from graphql.error import GraphQLError
from starlette.routing import Route
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from app.api.graphql.context import Context, GraphQLInfo, get_context
from app.api.graphql.errors import KehuErrors, code_own_errors, log_errors
from app.api.graphql.executor import GraphQLExecutor
from app.api.graphql.extend import extend_types
from app.api.graphql.graphiql import graphiql_enabled, mount_assets
from app.api.graphql.ids import decode_global_id
from app.api.graphql.metrics import GraphQLMetrics
from app.api.graphql.pydantic_types import node_types
from app.api.graphql.transport import KehuGraphQLRouter, post_endpoint
from app.core.config import Settings
from app.domains import all_domains


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its Relay global id; null if not found.")  # type: ignore[untyped-decorator]
    async def node(self, info: GraphQLInfo, id: strawberry.ID) -> relay.Node | None:
        type_name, _ = decode_global_id(id)
        node_type = node_types.get(type_name)
        if node_type is None:
            return None
        found: list[relay.Node | None] = await node_type.resolve_nodes(  # type: ignore[attr-defined]
            info=info, node_ids=[str(id)]
        )
        return found[0] if found else None


class KehuSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        code_own_errors(errors)
        log_errors(errors, execution_context)


def limit_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The depth and alias limits as validation rules."""
    return _limit_rules(settings.graphql_max_depth, settings.graphql_max_aliases)


def _limit_rules(max_depth: int, max_aliases: int) -> list[type[ASTValidationRule]]:
    return [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema under these settings' limits. Built once per distinct limits (~50 ms): an app
    is created per test, and the schema holds no per-app state."""
    return _schema(
        settings.graphql_max_depth, settings.graphql_max_aliases, settings.graphql_max_tokens
    )


@lru_cache(maxsize=8)
def _schema(max_depth: int, max_aliases: int, max_tokens: int) -> strawberry.Schema:
    # The depth and alias limiters build their validation rule classes when constructed. Building
    # them once here, and adding the same classes on every request, keeps ValidationCache effective:
    # its key includes the rules, so per-request limiter instances would make every lookup a miss.
    rules = _limit_rules(max_depth, max_aliases)
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        KehuErrors,
        GraphQLMetrics,
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        partial(AddValidationRules, rules),
        ParserCache,
        ValidationCache,
    ]
    domains = all_domains()
    extend_types(extension for d in domains for extension in d.graphql_type_fields)
    queries = [NodeQuery, *(d.graphql_query for d in domains if d.graphql_query)]
    mutations = [d.graphql_mutation for d in domains if d.graphql_mutation]
    types = [*node_types.values(), *(t for d in domains for t in d.graphql_types)]
    return KehuSchema(
        query=merge_types("Query", tuple(queries)),
        mutation=merge_types("Mutation", tuple(mutations)),
        types=types,
        extensions=extensions,
    )


def mount_graphql(app: FastAPI, settings: Settings, path: str = "/graphql") -> None:
    """POST on Kehu's own executor (first among the routes: the hot path); GET (URL queries and
    the GraphiQL page, when ``KEHU_GRAPHIQL`` resolves to on) on strawberry's router."""
    schema = build_schema(settings)
    executor = GraphQLExecutor(schema, limit_rules(settings), settings.graphql_max_tokens)
    app.state.graphql_executor = executor
    app.router.routes.insert(
        0, Route(path, post_endpoint(executor), methods=["POST"], include_in_schema=False)
    )
    graphiql_assets = mount_assets(app, path) if graphiql_enabled(settings) else None
    router: GraphQLRouter[Context, None] = KehuGraphQLRouter(
        schema,
        graphiql_assets=graphiql_assets,
        context_getter=get_context,
        subscription_protocols=(),
    )
    app.include_router(router, prefix=path, include_in_schema=False)
