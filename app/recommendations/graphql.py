"""Recommendations over GraphQL: ``Customer.recommendations(kind, limit)``, the same as
``GET /v1/customers/{id}/recommendations``, for every customer of a request in one statement (a
DataLoader)."""

from typing import Annotated, Any

import strawberry
from strawberry.types.field import StrawberryField

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.extend import type_field
from app.api.graphql.pydantic_types import graphql_enum, object_type
from app.recommendations import service
from app.recommendations.enums import RequestedKind
from app.recommendations.loaders import recommendations_by_customer
from app.recommendations.schemas import DEFAULT_LIMIT, MAX_LIMIT, RecommendationsOut

RecommendationsType: Any = object_type(RecommendationsOut, name="Recommendations")
RequestedKindEnum: Any = graphql_enum(RequestedKind)


async def _customer_recommendations(
    root: Any,
    info: GraphQLInfo,
    kind: Annotated[
        RequestedKindEnum | None,
        strawberry.argument(description="Only cross-sells or only upsells; both when not given."),
    ] = None,
    limit: Annotated[
        int, strawberry.argument(description=f"Items at most (1 to {MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
) -> RecommendationsType | None:
    service.check_limit(limit, "limit")
    requested = RequestedKind(kind) if kind is not None else None
    return await info.context.loader(recommendations_by_customer).load((root.id, requested, limit))


CUSTOMER_FIELD: StrawberryField = type_field(
    "recommendations",
    _customer_recommendations,
    description="What to offer the customer, best first (as `GET "
    "/v1/customers/{id}/recommendations`; scope `analytics:read`).",
)
