import uuid
from typing import Annotated

from fastapi import Query, Response, status

from app.api.deps import KehuRoute, ScopeDep
from app.api.responses import json_response, page_response
from app.api.routing import IfMatchDep, resource_router
from app.core.http import etag, expected_version
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut
from app.webhooks import service
from app.webhooks.schemas import (
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)


class _SecretRoute(KehuRoute):
    stores_responses = False  # a secret is shown once and never stored for Idempotency-Key


router = resource_router("/webhooks/endpoints", "webhooks", route_class=_SecretRoute)


def _with_secret(endpoint: WebhookEndpointOut, secret: str, status_code: int) -> Response:
    body = WebhookEndpointWithSecret(**endpoint.model_dump(), secret=secret)
    return json_response(
        body,
        status_code,
        ETag=etag(endpoint.version),
        Location=f"/v1/webhooks/endpoints/{endpoint.id}",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook endpoint",
    description="The answer carries the signing secret, shown this once. The URL is refused (422) "
    "unless it is `https://` on a public address.",
    response_model=WebhookEndpointWithSecret,
)
async def create_webhook_endpoint(body: WebhookEndpointCreate, scope: ScopeDep) -> Response:
    endpoint, secret = await service.create_endpoint(scope.conn, scope.caller, body)
    return _with_secret(endpoint, secret, status.HTTP_201_CREATED)


@router.get(
    "",
    summary="List webhook endpoints",
    description="Oldest first.",
    response_model=PageOut[WebhookEndpointOut],
)
async def list_webhook_endpoints(
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    page = await service.list_endpoints(scope.conn, scope.caller, limit=limit, cursor=cursor)
    return page_response(page)


@router.get("/{endpoint_id}", summary="Get a webhook endpoint", response_model=WebhookEndpointOut)
async def get_webhook_endpoint(endpoint_id: uuid.UUID, scope: ScopeDep) -> Response:
    endpoint = await service.get_endpoint(scope.conn, scope.caller, endpoint_id)
    return json_response(endpoint, ETag=etag(endpoint.version))


@router.patch(
    "/{endpoint_id}", summary="Update a webhook endpoint", response_model=WebhookEndpointOut
)
async def update_webhook_endpoint(
    endpoint_id: uuid.UUID,
    body: WebhookEndpointUpdate,
    scope: ScopeDep,
    if_match: IfMatchDep = None,
) -> Response:
    endpoint = await service.update_endpoint(
        scope.conn, scope.caller, endpoint_id, body, expected_version(if_match)
    )
    return json_response(endpoint, ETag=etag(endpoint.version))


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="Rotate a webhook endpoint's secret",
    description="A new secret, shown this once. For 24 hours deliveries are signed with both the "
    "new and the old secret (two `v1,` signatures), so receivers can switch without losing any.",
    response_model=WebhookEndpointWithSecret,
)
async def rotate_webhook_secret(endpoint_id: uuid.UUID, scope: ScopeDep) -> Response:
    endpoint, secret = await service.rotate_secret(scope.conn, scope.caller, endpoint_id)
    return _with_secret(endpoint, secret, status.HTTP_200_OK)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a webhook endpoint",
    description="Nothing more is delivered to it; its delivery log is kept.",
)
async def delete_webhook_endpoint(
    endpoint_id: uuid.UUID, scope: ScopeDep, if_match: IfMatchDep = None
) -> Response:
    await service.delete_endpoint(scope.conn, scope.caller, endpoint_id, expected_version(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
