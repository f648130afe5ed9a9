"""Placeholder until the GraphQL schema lands."""

import strawberry
from strawberry.fastapi import GraphQLRouter

from app.core.config import Settings


@strawberry.type
class Query:
    @strawberry.field
    def ping(self) -> str:
        return "pong"


def build_schema(settings: Settings) -> strawberry.Schema:
    return strawberry.Schema(query=Query)


def graphql_router(settings: Settings) -> GraphQLRouter:
    return GraphQLRouter(build_schema(settings))
