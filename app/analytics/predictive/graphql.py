"""The fitted predictive models over GraphQL: ``analyticsModels`` (as ``GET /v1/analytics/models``)."""

from typing import Any

import strawberry

from app.analytics.predictive import service
from app.analytics.predictive.schemas import ModelFitOut
from app.api.graphql.context import GraphQLInfo
from app.api.graphql.pydantic_types import object_type
from app.db import read_connection

AnalyticsModelFitType: Any = object_type(ModelFitOut, name="AnalyticsModelFit")


@strawberry.type
class ModelQueries:
    @strawberry.field(
        description="The newest fit of each predictive model, `bg_nbd` first (as `GET "
        "/v1/analytics/models`; scope `analytics:read`)."
    )  # type: ignore[untyped-decorator]
    async def analytics_models(self, info: GraphQLInfo) -> list[AnalyticsModelFitType]:
        async with read_connection() as conn:
            listed = await service.list_models(conn, info.context.caller)
        return listed.data
