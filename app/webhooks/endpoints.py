"""Webhooks over REST: the endpoints (``/webhooks/endpoints``) and their delivery log
(``/webhooks/deliveries``, ``/webhooks/replay``), on one router (a domain has one)."""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query, Response, status

from app.api.deps import KehuRoute, ScopeDep
from app.api.problems import problem_doc
from app.api.responses import json_response, page_response
from app.api.routing import IfMatchDep, resource_router
from app.core.http import etag, expected_version
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut
from app.webhooks import service
from app.webhooks.schemas import (
    WebhookAttemptOut,
    WebhookDeliveryFilter,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookReplay,
    WebhookReplayResult,
)


class _SecretRoute(KehuRoute):
    stores_responses = False  # a secret is shown once and never stored for Idempotency-Key


router = resource_router("/webhooks", "webhooks")


def _secret_post(path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@router.post`` for an answer that carries a secret (never stored for Idempotency-Key)."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(
            path, endpoint, methods=["POST"], route_class_override=_SecretRoute, **kwargs
        )
        return endpoint

    return register


def _with_secret(endpoint: WebhookEndpointOut, secret: str, status_code: int) -> Response:
    body = WebhookEndpointWithSecret(**endpoint.model_dump(), secret=secret)
    return json_response(
        body,
        status_code,
        ETag=etag(endpoint.version),
        Location=f"/v1/webhooks/endpoints/{endpoint.id}",
    )


@_secret_post(
    "/endpoints",
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
    "/endpoints",
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


@router.get(
    "/endpoints/{endpoint_id}", summary="Get a webhook endpoint", response_model=WebhookEndpointOut
)
async def get_webhook_endpoint(endpoint_id: uuid.UUID, scope: ScopeDep) -> Response:
    endpoint = await service.get_endpoint(scope.conn, scope.caller, endpoint_id)
    return json_response(endpoint, ETag=etag(endpoint.version))


@router.patch(
    "/endpoints/{endpoint_id}",
    summary="Update a webhook endpoint",
    response_model=WebhookEndpointOut,
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


@_secret_post(
    "/endpoints/{endpoint_id}/rotate-secret",
    summary="Rotate a webhook endpoint's secret",
    description="A new secret, shown this once. For 24 hours deliveries are signed with both the "
    "new and the old secret (two `v1,` signatures), so receivers can switch without losing any.",
    response_model=WebhookEndpointWithSecret,
)
async def rotate_webhook_secret(endpoint_id: uuid.UUID, scope: ScopeDep) -> Response:
    endpoint, secret = await service.rotate_secret(scope.conn, scope.caller, endpoint_id)
    return _with_secret(endpoint, secret, status.HTTP_200_OK)


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a webhook endpoint",
    description="Nothing more is delivered to it; its delivery log is kept.",
)
async def delete_webhook_endpoint(
    endpoint_id: uuid.UUID, scope: ScopeDep, if_match: IfMatchDep = None
) -> Response:
    await service.delete_endpoint(scope.conn, scope.caller, endpoint_id, expected_version(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/endpoints/{endpoint_id}/test",
    summary="Send a test event to a webhook endpoint",
    description="Sends a signed `webhook.test` event (`data`: `endpoint_id`, `message`) now, also "
    "to a disabled endpoint, and answers with the attempt: outcome, status, latency, the start of "
    "the answer. It is not retried; it shows in the delivery log and the endpoint's `health`, not "
    "in the event feed. A target Kehu does not deliver to (an internal address) is the outcome "
    "`refused`.",
    response_model=WebhookAttemptOut,
)
async def test_webhook_endpoint(endpoint_id: uuid.UUID, scope: ScopeDep) -> Response:
    attempt = await service.ping_endpoint(scope.conn, scope.caller, endpoint_id)
    return json_response(attempt)


@router.get(
    "/deliveries",
    summary="List webhook deliveries",
    description="Newest first, each with its last 20 attempts (newest first): time, outcome, "
    "status code, latency and the start of the answer (at most 1 KiB; secrets shown as "
    "`[secret]`). Removed endpoints' deliveries are kept.",
    response_model=PageOut[WebhookDeliveryOut],
)
async def list_webhook_deliveries(
    scope: ScopeDep,
    filters: Annotated[WebhookDeliveryFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    page = await service.list_deliveries(
        scope.conn, scope.caller, filters, limit=limit, cursor=cursor
    )
    return page_response(page)


@router.get(
    "/deliveries/{delivery_id}",
    summary="Get a webhook delivery",
    response_model=WebhookDeliveryOut,
)
async def get_webhook_delivery(delivery_id: uuid.UUID, scope: ScopeDep) -> Response:
    return json_response(await service.get_delivery(scope.conn, scope.caller, delivery_id))


@router.post(
    "/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Retry a webhook delivery",
    description="Sends the delivery again, as soon as a worker gets to it. A `failed` or "
    "`succeeded` delivery goes back to `pending` with a fresh retry schedule (`attempts` from 0; "
    "earlier attempts stay in `attempt_log`); a `pending` one becomes due now. It is sent with the "
    "same `webhook-id`, after any earlier pending event of its customer; to a disabled endpoint "
    "once it is enabled again.",
    response_model=WebhookDeliveryOut,
    responses={
        409: problem_doc(
            "`webhook_endpoint_removed`: the delivery's endpoint was removed; "
            "`webhook_event_unavailable`: its event is no longer in the event log (past its "
            "retention, or a test ping)."
        )
    },
)
async def retry_webhook_delivery(delivery_id: uuid.UUID, scope: ScopeDep) -> Response:
    found = await service.retry_delivery(scope.conn, scope.caller, delivery_id)
    return json_response(found, status.HTTP_202_ACCEPTED)


@router.post(
    "/replay",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Replay events to a webhook endpoint",
    description="Queues events of the event log for the endpoint again: the ones named in "
    "`event_ids` (up to 1,000), or those that occurred in [`from`, `to`) (at most 31 days and "
    "100,000 events), that its `event_types` match. Idempotent: an event that already has a "
    "delivery to the endpoint is re-queued, never queued twice. An `endpoint_id` of no (or a "
    "removed) endpoint is a 422.",
    response_model=WebhookReplayResult,
)
async def replay_webhook_events(body: WebhookReplay, scope: ScopeDep) -> Response:
    result = await service.replay(scope.conn, scope.caller, body)
    return json_response(result, status.HTTP_202_ACCEPTED)
