import uuid
from typing import Annotated

from fastapi import Query, Response, status

from app.api.deps import ScopeDep
from app.api.problems import problem_doc
from app.api.responses import json_response, page_response
from app.api.routing import IfMatchDep, resource_router
from app.core.http import etag, expected_version
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut
from app.interactions import batch, service
from app.interactions.schemas import (
    FollowUpFilter,
    InteractionBatch,
    InteractionBatchResult,
    InteractionCreate,
    InteractionFilter,
    InteractionOut,
    InteractionSort,
    InteractionUpdate,
)

router = resource_router("/interactions", "interactions")
# The follow-up list has a path of its own; its route joins the interactions router below (one
# domain, one router; a route keeps the full path it was built with, and no router is nested).
follow_ups = resource_router("/follow-ups", "interactions")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Log an interaction",
    description="The same `source` and `external_id` again for the same customer answers the "
    "stored interaction with **200** instead of 201, the same body (nothing is logged twice, "
    "no event).",
    response_model=InteractionOut,
    responses={
        409: problem_doc(
            "The source and external_id belong to an interaction of another customer."
        ),
    },
)
async def log_interaction(body: InteractionCreate, scope: ScopeDep) -> Response:
    interaction, created = await service.log_interaction(scope.conn, scope.caller, body)
    if not created:
        return json_response(interaction, ETag=etag(interaction.version))
    return json_response(
        interaction,
        status.HTTP_201_CREATED,
        ETag=etag(interaction.version),
        Location=f"/v1/interactions/{interaction.id}",
    )


@router.get("", summary="List interactions", response_model=PageOut[InteractionOut])
async def list_interactions(
    scope: ScopeDep,
    filters: Annotated[InteractionFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    sort: Annotated[InteractionSort, Query(description="Field, `-` for descending.")] = (
        InteractionSort.occurred_at_desc
    ),
) -> Response:
    page = await service.list_interactions(
        scope.conn, scope.caller, filters, sort=sort, limit=limit, cursor=cursor
    )
    return page_response(page)


@router.post(
    "/batch",
    summary="Log up to 1,000 interactions",
    description="One transaction; one result per item, in request order: `created`, "
    "`existing` (its source and external_id were logged before) or `error` (the item is "
    "reported and skipped, the others are written).",
    response_model=InteractionBatchResult,
)
async def log_interactions_batch(body: InteractionBatch, scope: ScopeDep) -> Response:
    result = await batch.log_batch(scope.conn, scope.caller, body, items_plain=scope.body_plain)
    return json_response(result)


@router.get("/{interaction_id}", summary="Get an interaction", response_model=InteractionOut)
async def get_interaction(interaction_id: uuid.UUID, scope: ScopeDep) -> Response:
    interaction = await service.get_interaction(scope.conn, scope.caller, interaction_id)
    return json_response(interaction, ETag=etag(interaction.version))


@router.patch(
    "/{interaction_id}",
    summary="Update an interaction",
    response_model=InteractionOut,
    responses={409: problem_doc("The status change is not allowed (`illegal_status_change`).")},
)
async def update_interaction(
    interaction_id: uuid.UUID,
    body: InteractionUpdate,
    scope: ScopeDep,
    if_match: IfMatchDep = None,
) -> Response:
    interaction = await service.update_interaction(
        scope.conn, scope.caller, interaction_id, body, expected_version(if_match)
    )
    return json_response(interaction, ETag=etag(interaction.version))


@follow_ups.get(
    "",
    summary="List follow-ups",
    description="Planned follow-ups (by default) by due date, then id.",
    response_model=PageOut[InteractionOut],
)
async def list_follow_ups(
    scope: ScopeDep,
    filters: Annotated[FollowUpFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    page = await service.list_follow_ups(
        scope.conn, scope.caller, filters, limit=limit, cursor=cursor
    )
    return page_response(page)


router.routes.extend(follow_ups.routes)
