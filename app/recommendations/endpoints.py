"""Recommendations over REST: ``GET /v1/customers/{customer_id}/recommendations`` (scope
``analytics:read``)."""

import uuid
from typing import Annotated

from fastapi import Query, Response

from app.api.deps import ScopeDep
from app.api.responses import json_response
from app.api.routing import resource_router
from app.recommendations import service
from app.recommendations.enums import RequestedKind
from app.recommendations.schemas import DEFAULT_LIMIT, MAX_LIMIT, RecommendationsOut

router = resource_router("/customers", "recommendations")


@router.get(
    "/{customer_id}/recommendations",
    summary="A customer's recommendations",
    description="What to offer the customer, best first, from the co-purchase statistics of the "
    "last analytics refresh (scope `analytics:read`; definitions in docs/recommendations.md). "
    "`cross_sell`: items often bought together with one the customer bought; `upsell`: items "
    "priced above anything the customer paid in a category they buy, most popular first. An "
    "item the customer has bought (in an order that is not cancelled) is never recommended. A "
    "customer with no candidates of the kinds asked for (no history, say) gets the best sellers "
    "(`popular`). An unknown customer is 404 `customer_not_found`.",
    response_model=RecommendationsOut,
)
async def get_customer_recommendations(
    customer_id: uuid.UUID,
    scope: ScopeDep,
    kind: Annotated[
        RequestedKind | None,
        Query(description="Only cross-sells or only upsells; both when not given."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items at most.")] = DEFAULT_LIMIT,
) -> Response:
    found = await service.customer_recommendations(
        scope.conn, scope.caller, customer_id, kind=kind, limit=limit
    )
    return json_response(found)
