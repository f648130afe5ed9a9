"""Customer analytics over REST: refreshes (``/analytics/refresh``, ``/analytics/refreshes``), the
overview (``/analytics/overview``), a customer's metrics (``/customers/{id}/metrics``) and the
predictive models (``/analytics/models``, from ``app.analytics.predictive``), on one router."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.analytics import service
from app.analytics.predictive.endpoints import router as models_router
from app.analytics.schemas import AnalyticsOverview, CustomerMetricsOut, RefreshCreate, RefreshOut
from app.api.deps import KehuRoute, ScopeDep
from app.api.problems import problem_doc
from app.api.responses import json_response, page_response
from app.api.routing import resource_router
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut

analytics_router = resource_router("/analytics", "analytics")
customers_router = resource_router("/customers", "analytics")


@analytics_router.post(
    "/refresh",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Refresh the analytics",
    description="Queues a full recompute (scope `analytics:refresh`): every customer's order "
    "figures, recency, RFM, value tier and lifecycle stage, the predictive models and their "
    "predictions, and the co-purchase statistics, all as of `as_of` (default today, UTC; not in "
    "the future). Answers the queued refresh, with `Location` to follow its progress. One at a "
    "time: while one is queued or running, 409 `refresh_in_progress` with its id in "
    "`refresh_id`.",
    response_model=RefreshOut,
    responses={
        409: problem_doc(
            "`refresh_in_progress`: a refresh is queued or running (its id in `refresh_id`)."
        )
    },
)
async def refresh_analytics(scope: ScopeDep, body: RefreshCreate | None = None) -> Response:
    created = await service.request_refresh(scope.conn, scope.caller, body or RefreshCreate())
    return json_response(
        created, status.HTTP_202_ACCEPTED, Location=f"/v1/analytics/refreshes/{created.id}"
    )


@analytics_router.get(
    "/refreshes",
    summary="List analytics refreshes",
    description="Newest first. Scope `analytics:read` or `analytics:refresh`.",
    response_model=PageOut[RefreshOut],
)
async def list_analytics_refreshes(
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    page = await service.list_refreshes(scope.conn, scope.caller, limit=limit, cursor=cursor)
    return page_response(page)


@analytics_router.get(
    "/refreshes/{refresh_id}",
    summary="Get an analytics refresh",
    description="Its status and progress: the step running (`step`), `steps_done` of "
    "`steps_total`, each finished step's `figures` (`seconds` and what it counted), and `error` "
    "when it failed. Scope `analytics:read` or `analytics:refresh`.",
    response_model=RefreshOut,
)
async def get_analytics_refresh(refresh_id: uuid.UUID, scope: ScopeDep) -> Response:
    return json_response(await service.get_refresh(scope.conn, scope.caller, refresh_id))


@analytics_router.get(
    "/overview",
    summary="Analytics overview",
    description="Live customers by lifecycle stage, value tier and RFM segment, and their churn "
    "risk in five buckets, as of the latest succeeded refresh (`as_of`); revenue (gross, "
    "refunds, net) and the repeat rate over every order now; the average 12-month CLV. Scope "
    "`analytics:read`.",
    response_model=AnalyticsOverview,
)
async def get_analytics_overview(scope: ScopeDep) -> Response:
    return json_response(await service.overview(scope.conn, scope.caller))


@customers_router.get(
    "/{customer_id}/metrics",
    summary="Get a customer's metrics",
    description="The order figures (current) and the latest refresh's recency, RFM, value tier, "
    "lifecycle stage and predictions (as of `as_of`). A customer without orders answers as a "
    "`prospect` with zero figures. Scope `analytics:read`.",
    response_model=CustomerMetricsOut,
)
async def get_customer_metrics(customer_id: uuid.UUID, scope: ScopeDep) -> Response:
    return json_response(await service.get_metrics(scope.conn, scope.caller, customer_id))


# The domain's one router: its resources' routes side by side, as their resource routers built
# them (KehuRoutes with full paths), so the app includes them one level deep like any other.
router = APIRouter(route_class=KehuRoute)
router.routes.extend([*analytics_router.routes, *customers_router.routes, *models_router.routes])
