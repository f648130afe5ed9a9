"""Webhooks over GraphQL: the Relay ``WebhookEndpoint`` node (with its ``health``), the
``webhookEndpoints`` connection and the mutations; the delivery log (``webhookDeliveries``,
``retryWebhookDelivery``, ``replayWebhookEvents``, ``testWebhookEndpoint``); on the same service as
REST. The secret appears only in the payloads of ``createWebhookEndpoint`` and
``rotateWebhookSecret``."""

import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.ids import global_id, parse_id
from app.api.graphql.inputs import validated
from app.api.graphql.pagination import check_page, connection
from app.api.graphql.pydantic_types import input_type, object_type, provided
from app.core.errors import NotFound
from app.core.pagination import DEFAULT_LIMIT
from app.db import read_connection, unit_of_work
from app.webhooks import service
from app.webhooks.schemas import (
    WebhookAttemptOut,
    WebhookDeliveryFilter,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
    WebhookReplay,
    WebhookReplayResult,
)

TYPE_NAME = "WebhookEndpoint"


async def _load_nodes(info: GraphQLInfo, node_ids: list[str]) -> list[WebhookEndpointOut | None]:
    ids = [parse_id(TYPE_NAME, node_id) for node_id in node_ids]
    found: list[WebhookEndpointOut | None] = []
    async with read_connection() as conn:
        for endpoint_id in ids:
            try:
                found.append(await service.get_endpoint(conn, info.context.caller, endpoint_id))
            except NotFound:
                found.append(None)
    return found


WebhookEndpointType: Any = object_type(WebhookEndpointOut, name=TYPE_NAME, node=_load_nodes)
WebhookEndpointCreateInput: Any = input_type(
    WebhookEndpointCreate, name="WebhookEndpointCreateInput", description="As the REST body."
)
WebhookEndpointUpdateInput: Any = input_type(
    WebhookEndpointUpdate,
    name="WebhookEndpointUpdateInput",
    description="Only the fields given change.",
)


@strawberry.type(name="WebhookEndpointEdge")
class WebhookEndpointEdge:
    cursor: str
    node: WebhookEndpointType


@strawberry.type(name="WebhookEndpointConnection")
class WebhookEndpointConnection:
    edges: list[WebhookEndpointEdge]
    page_info: relay.PageInfo


DELIVERY_TYPE_NAME = "WebhookDelivery"


async def _load_deliveries(
    info: GraphQLInfo, node_ids: list[str]
) -> list[WebhookDeliveryOut | None]:
    ids = [parse_id(DELIVERY_TYPE_NAME, node_id) for node_id in node_ids]
    found: list[WebhookDeliveryOut | None] = []
    async with read_connection() as conn:
        for delivery_id in ids:
            try:
                found.append(await service.get_delivery(conn, info.context.caller, delivery_id))
            except NotFound:
                found.append(None)
    return found


WebhookAttemptType: Any = object_type(WebhookAttemptOut, name="WebhookAttempt")
WebhookDeliveryType: Any = object_type(
    WebhookDeliveryOut, name=DELIVERY_TYPE_NAME, node=_load_deliveries
)
WebhookReplayResultType: Any = object_type(WebhookReplayResult, name="WebhookReplayResult")
WebhookDeliveryFilterInput: Any = input_type(WebhookDeliveryFilter, name="WebhookDeliveryFilter")
_REPLAY_FIELDS = WebhookReplay.model_fields


@strawberry.input(
    name="WebhookReplayInput",
    description="As the REST body: `eventIds`, or `from` and `to`.",
)
class WebhookReplayInput:
    endpoint_id: strawberry.ID = strawberry.field(
        description="The webhook endpoint: its global id or raw UUID."
    )
    event_ids: list[uuid.UUID] | None = strawberry.field(
        default=strawberry.UNSET, description=_REPLAY_FIELDS["event_ids"].description
    )
    from_: datetime | None = strawberry.field(
        name="from", default=strawberry.UNSET, description=_REPLAY_FIELDS["from_"].description
    )
    to: datetime | None = strawberry.field(
        default=strawberry.UNSET, description=_REPLAY_FIELDS["to"].description
    )


@strawberry.type(name="WebhookDeliveryEdge")
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDeliveryType


@strawberry.type(name="WebhookDeliveryConnection")
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: relay.PageInfo


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="A webhook endpoint by its global id or raw UUID.")  # type: ignore[untyped-decorator]
    async def webhook_endpoint(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> WebhookEndpointType | None:
        (found,) = await _load_nodes(info, [id])
        return found

    @strawberry.field(description="Webhook endpoints, oldest first (a Relay connection).")  # type: ignore[untyped-decorator]
    async def webhook_endpoints(
        self, info: GraphQLInfo, first: int = DEFAULT_LIMIT, after: str | None = None
    ) -> WebhookEndpointConnection:
        check_page(first, after)
        async with read_connection() as conn:
            page = await service.list_endpoints(
                conn, info.context.caller, limit=first, cursor=after
            )
        return await connection(page, after, WebhookEndpointEdge, WebhookEndpointConnection)

    @strawberry.field(description="A webhook delivery by its global id or raw UUID.")  # type: ignore[untyped-decorator]
    async def webhook_delivery(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> WebhookDeliveryType | None:
        (found,) = await _load_deliveries(info, [id])
        return found

    @strawberry.field(
        description="The delivery log: deliveries newest first, each with its last attempts "
        "(a Relay connection)."
    )  # type: ignore[untyped-decorator]
    async def webhook_deliveries(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        filter: Annotated[
            WebhookDeliveryFilterInput | None,
            strawberry.argument(description="Every filter given must hold (as REST's)."),
        ] = None,
    ) -> WebhookDeliveryConnection:
        check_page(first, after)
        filters = validated(WebhookDeliveryFilter, provided(filter) or {}, "filter")
        async with read_connection() as conn:
            page = await service.list_deliveries(
                conn, info.context.caller, filters, limit=first, cursor=after
            )
        return await connection(page, after, WebhookDeliveryEdge, WebhookDeliveryConnection)


@strawberry.type
class WebhookEndpointWithSecretPayload:
    webhook_endpoint: WebhookEndpointType
    secret: str = strawberry.field(
        description="The signing secret (`whsec_...`). Shown this once; store it now."
    )


@strawberry.type
class UpdateWebhookEndpointPayload:
    webhook_endpoint: WebhookEndpointType


@strawberry.type
class DeleteWebhookEndpointPayload:
    deleted_id: strawberry.ID
    webhook_endpoint_id: uuid.UUID


@strawberry.type
class RetryWebhookDeliveryPayload:
    webhook_delivery: WebhookDeliveryType


@strawberry.type
class TestWebhookEndpointPayload:
    attempt: WebhookAttemptType


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Register a webhook endpoint (as `POST /v1/webhooks/endpoints`)."
    )  # type: ignore[untyped-decorator]
    async def create_webhook_endpoint(
        self, info: GraphQLInfo, input: WebhookEndpointCreateInput
    ) -> WebhookEndpointWithSecretPayload:
        payload = validated(WebhookEndpointCreate, provided(input))
        async with unit_of_work() as conn:
            endpoint, secret = await service.create_endpoint(conn, info.context.caller, payload)
        return WebhookEndpointWithSecretPayload(webhook_endpoint=endpoint, secret=secret)

    @strawberry.mutation(description="Change the given fields; `ifMatch` is the expected version.")  # type: ignore[untyped-decorator]
    async def update_webhook_endpoint(
        self,
        info: GraphQLInfo,
        id: strawberry.ID,
        input: WebhookEndpointUpdateInput,
        if_match: int | None = None,
    ) -> UpdateWebhookEndpointPayload:
        endpoint_id = parse_id(TYPE_NAME, id)
        payload = validated(WebhookEndpointUpdate, provided(input))
        async with unit_of_work() as conn:
            endpoint = await service.update_endpoint(
                conn, info.context.caller, endpoint_id, payload, if_match
            )
        return UpdateWebhookEndpointPayload(webhook_endpoint=endpoint)

    @strawberry.mutation(description="A new secret; the old one keeps signing for 24 hours.")  # type: ignore[untyped-decorator]
    async def rotate_webhook_secret(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> WebhookEndpointWithSecretPayload:
        endpoint_id = parse_id(TYPE_NAME, id)
        async with unit_of_work() as conn:
            endpoint, secret = await service.rotate_secret(conn, info.context.caller, endpoint_id)
        return WebhookEndpointWithSecretPayload(webhook_endpoint=endpoint, secret=secret)

    @strawberry.mutation(description="Remove a webhook endpoint; its delivery log is kept.")  # type: ignore[untyped-decorator]
    async def delete_webhook_endpoint(
        self, info: GraphQLInfo, id: strawberry.ID, if_match: int | None = None
    ) -> DeleteWebhookEndpointPayload:
        endpoint_id = parse_id(TYPE_NAME, id)
        async with unit_of_work() as conn:
            await service.delete_endpoint(conn, info.context.caller, endpoint_id, if_match)
        return DeleteWebhookEndpointPayload(
            deleted_id=strawberry.ID(global_id(TYPE_NAME, endpoint_id)),
            webhook_endpoint_id=endpoint_id,
        )

    @strawberry.mutation(
        description="Send a delivery again now (as `POST /v1/webhooks/deliveries/{id}/retry`): a "
        "finished one gets a fresh retry schedule."
    )  # type: ignore[untyped-decorator]
    async def retry_webhook_delivery(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> RetryWebhookDeliveryPayload:
        delivery_id = parse_id(DELIVERY_TYPE_NAME, id)
        async with unit_of_work() as conn:
            found = await service.retry_delivery(conn, info.context.caller, delivery_id)
        return RetryWebhookDeliveryPayload(webhook_delivery=found)

    @strawberry.mutation(
        description="Queue events of the event log for an endpoint again (as `POST "
        "/v1/webhooks/replay`); each event once, however often it is replayed."
    )  # type: ignore[untyped-decorator]
    async def replay_webhook_events(
        self, info: GraphQLInfo, input: WebhookReplayInput
    ) -> WebhookReplayResultType:
        sent = provided(input)
        data: dict[str, Any] = {
            "endpoint_id": parse_id(TYPE_NAME, sent.pop("endpoint_id")),
            **sent,
        }
        if "from_" in data:
            data["from"] = data.pop("from_")
        payload = validated(WebhookReplay, data)
        async with unit_of_work() as conn:
            return await service.replay(conn, info.context.caller, payload)

    @strawberry.mutation(
        description="Send a signed `webhook.test` event to the endpoint now and answer with the "
        "attempt (as `POST /v1/webhooks/endpoints/{id}/test`)."
    )  # type: ignore[untyped-decorator]
    async def test_webhook_endpoint(
        self, info: GraphQLInfo, id: strawberry.ID
    ) -> TestWebhookEndpointPayload:
        endpoint_id = parse_id(TYPE_NAME, id)
        async with unit_of_work() as conn:
            attempt = await service.ping_endpoint(conn, info.context.caller, endpoint_id)
        return TestWebhookEndpointPayload(attempt=attempt)
