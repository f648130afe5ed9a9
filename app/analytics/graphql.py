"""Customer analytics over GraphQL: ``Customer.metrics`` (one query per request, through a
DataLoader), ``analyticsOverview``, ``analyticsRefresh(id)``, the mutation ``refreshAnalytics``, and
the predictive models' ``analyticsModels`` (``app.analytics.predictive``); on the same service
functions as REST."""

import uuid
from datetime import date
from typing import Annotated, Any

import strawberry

from app.analytics import service
from app.analytics.loaders import metrics_by_customer
from app.analytics.predictive.graphql import ModelQueries
from app.analytics.schemas import AnalyticsOverview, CustomerMetricsOut, RefreshCreate, RefreshOut
from app.api.graphql.context import GraphQLInfo
from app.api.graphql.extend import type_field
from app.api.graphql.inputs import validated
from app.api.graphql.pydantic_types import object_type
from app.core.errors import BadRequest
from app.db import read_connection, unit_of_work

CustomerMetricsType: Any = object_type(CustomerMetricsOut, name="CustomerMetrics")
AnalyticsOverviewType: Any = object_type(AnalyticsOverview, name="AnalyticsOverview")
AnalyticsRefreshType: Any = object_type(RefreshOut, name="AnalyticsRefresh")


async def customer_metrics(root: Any, info: GraphQLInfo) -> CustomerMetricsType | None:
    return await info.context.loader(metrics_by_customer).load(root.id)


# Added to the generated Customer node (Domain.graphql_type_fields).
METRICS_FIELD = type_field(
    "metrics",
    customer_metrics,
    description="The customer's order figures and the latest refresh's RFM, value tier, "
    "lifecycle stage and predictions (as `GET /v1/customers/{id}/metrics`; scope "
    "`analytics:read`).",
)


def _refresh_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequest(f"{value!r} is not a refresh id.", code="invalid_id") from None


@strawberry.type
class AnalyticsQueries(ModelQueries):
    @strawberry.field(
        description="Customers by lifecycle stage, value tier, RFM segment and churn risk, "
        "revenue, repeat rate and average CLV (as `GET /v1/analytics/overview`; scope "
        "`analytics:read`)."
    )  # type: ignore[untyped-decorator]
    async def analytics_overview(self, info: GraphQLInfo) -> AnalyticsOverviewType:
        async with read_connection() as conn:
            return await service.overview(conn, info.context.caller)

    @strawberry.field(
        description="A refresh and its progress, by id; null if not found (scope "
        "`analytics:read` or `analytics:refresh`)."
    )  # type: ignore[untyped-decorator]
    async def analytics_refresh(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> AnalyticsRefreshType | None:
        async with read_connection() as conn:
            return await service.find_refresh(conn, info.context.caller, _refresh_id(id))


@strawberry.type
class RefreshAnalyticsPayload:
    refresh: AnalyticsRefreshType


@strawberry.type
class AnalyticsMutations:
    @strawberry.mutation(
        description="Queue a full analytics refresh (as `POST /v1/analytics/refresh`; scope "
        "`analytics:refresh`); `refresh_in_progress` while one is queued or running."
    )  # type: ignore[untyped-decorator]
    async def refresh_analytics(
        self,
        info: GraphQLInfo,
        as_of: Annotated[
            date | None,
            strawberry.argument(
                description=RefreshCreate.model_fields["as_of"].description or None
            ),
        ] = None,
    ) -> RefreshAnalyticsPayload:
        given = {} if as_of is None else {"as_of": as_of}
        payload = validated(RefreshCreate, given, "arguments")
        async with unit_of_work() as conn:
            created = await service.request_refresh(conn, info.context.caller, payload)
        return RefreshAnalyticsPayload(refresh=created)
