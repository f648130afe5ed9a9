"""The fitted predictive models over REST (``/analytics/models``)."""

from fastapi import Response

from app.analytics.predictive import service
from app.analytics.predictive.schemas import ModelFitList
from app.api.deps import ScopeDep
from app.api.responses import json_response
from app.api.routing import resource_router

router = resource_router("/analytics/models", "analytics")


@router.get(
    "",
    summary="Fitted predictive models",
    description="The newest fit of each predictive model (BG/NBD for purchase frequency and "
    "P(alive), Gamma-Gamma for spend per order): parameters, sample size, log-likelihood, time "
    "unit, calibration window, when the fit ran and how long it took, whether it converged, and "
    "the holdout check when one is configured. An empty list before the first refresh that "
    "could fit them. Models are fitted by the analytics refresh, never by a request. Scope "
    "`analytics:read`.",
    response_model=ModelFitList,
)
async def list_analytics_models(scope: ScopeDep) -> Response:
    return json_response(await service.list_models(scope.conn, scope.caller))
