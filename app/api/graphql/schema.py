"""The GraphQL schema at /graphql: the same keys, scopes, services and error codes as /v1."""

from collections.abc import Callable
from functools import partial

import strawberry
from graphql.error import GraphQLError
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
from strawberry.types import ExecutionContext

from app.api.graphql.context import Context, GraphQLInfo, get_context
from app.api.graphql.errors import KehuErrors, code_own_errors, log_errors
from app.api.graphql.transport import KehuGraphQLRouter
from app.core.config import Settings
from app.customers.graphql import (
    TYPE_NAME,
    CustomerMutations,
    CustomerQueries,
    CustomerType,
    decode_global_id,
    parse_customer_id,
)


@strawberry.type
class Query(CustomerQueries):
    @strawberry.field(description="Any object by its Relay global id; null if not found.")  # type: ignore[untyped-decorator]
    async def node(self, info: GraphQLInfo, id: strawberry.ID) -> relay.Node | None:
        type_name, _ = decode_global_id(id)
        if type_name != TYPE_NAME:
            return None
        view = await info.context.customers.by_id.load(parse_customer_id(id))
        return CustomerType.from_view(view) if view is not None else None


@strawberry.type
class Mutation(CustomerMutations):
    pass


class KehuSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        code_own_errors(errors)
        log_errors(errors, execution_context)


def build_schema(settings: Settings) -> strawberry.Schema:
    # The depth and alias limiters build their validation rule classes when constructed. Building
    # them once here, and adding the same classes on every request, keeps ValidationCache effective:
    # its key includes the rules, so per-request limiter instances would make every lookup a miss.
    rules = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        KehuErrors,
        partial(MaxTokensLimiter, max_token_count=settings.graphql_max_tokens),
        partial(AddValidationRules, rules),
        ParserCache,
        ValidationCache,
    ]
    return KehuSchema(query=Query, mutation=Mutation, types=[CustomerType], extensions=extensions)


def graphql_router(settings: Settings) -> GraphQLRouter[Context, None]:
    return KehuGraphQLRouter(
        build_schema(settings),
        context_getter=get_context,
        graphql_ide="graphiql",
        subscription_protocols=(),
    )
