"""Webhook endpoints: register, list, change, rotate the secret, remove; and their delivery log:
list, retry, replay, test ping."""

import base64
import dataclasses
import secrets
import uuid
from datetime import timedelta
from typing import Any

from app.core import clock
from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.http import check_version
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.db import Connection
from app.events.schemas import EventOut
from app.rules import service as rules
from app.webhooks import delivery, repository, ssrf
from app.webhooks.schemas import (
    MAX_REPLAY_EVENTS,
    WebhookAttemptOut,
    WebhookDeliveryFilter,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
    WebhookReplay,
    WebhookReplayResult,
)

SCOPE = "webhooks:manage"
SECRET_PREFIX = "whsec_"
# How long the old secret still signs deliveries after a rotation, so receivers can switch over.
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def target_policy() -> ssrf.TargetPolicy:
    return ssrf.TargetPolicy.from_settings(get_settings())


async def check_target(url: str) -> None:
    """Refuse a URL Kehu must not deliver to (422 on ``url``), resolving its host now; deliveries
    check again at every connection."""
    policy = target_policy()
    try:
        _, host, port = ssrf.check_url(url, policy)
        await ssrf.resolve_checked(host, port, policy)
    except ssrf.TargetRefused as refused:
        raise ValidationFailed(
            "The URL is not a target Kehu delivers to; see errors[].",
            errors=[{"field": "body.url", "message": str(refused)}],
        ) from None


async def create_endpoint(
    conn: Connection, caller: Caller, payload: WebhookEndpointCreate
) -> tuple[WebhookEndpointOut, str]:
    """Register an endpoint; returns it and its secret, which no other answer shows."""
    caller.require(SCOPE)
    if payload.rule is not None:
        rules.check_may_run(caller, payload.rule)
    await check_target(payload.url)
    secret = new_secret()
    now = clock.now()
    endpoint = await repository.insert_endpoint(
        conn,
        {
            **payload.model_dump(),
            "id": new_id(),
            "secret": secret,
            "include_pii": caller.has("pii:read"),
            "created_by": caller.key_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    return endpoint, secret


async def list_endpoints(
    conn: Connection, caller: Caller, *, limit: int, cursor: str | None
) -> Page[WebhookEndpointOut]:
    caller.require(SCOPE)
    page = await fetch_page(
        conn, repository.list_query(), limit=limit, cursor=cursor, sort=repository.LIST_SORT
    )
    return page.mapped(repository.endpoint_from_row)


async def get_endpoint(
    conn: Connection, caller: Caller, endpoint_id: uuid.UUID
) -> WebhookEndpointOut:
    caller.require(SCOPE)
    return await _live(conn, endpoint_id)


async def _live(
    conn: Connection,
    endpoint_id: uuid.UUID,
    expected_version: int | None = None,
    *,
    lock: bool = False,
) -> WebhookEndpointOut:
    endpoint = await repository.get_live(conn, endpoint_id, for_update=lock)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.", code="webhook_endpoint_not_found")
    check_version(endpoint.version, expected_version, "webhook endpoint")
    return endpoint


async def update_endpoint(
    conn: Connection,
    caller: Caller,
    endpoint_id: uuid.UUID,
    payload: WebhookEndpointUpdate,
    expected_version: int | None = None,
) -> WebhookEndpointOut:
    caller.require(SCOPE)
    if payload.rule is not None:
        rules.check_may_run(caller, payload.rule)
    endpoint = await _live(conn, endpoint_id, expected_version, lock=True)
    given = payload.model_dump(exclude_unset=True)
    current = endpoint.model_dump(include=set(given))
    values: dict[str, Any] = {k: v for k, v in given.items() if current.get(k) != v}
    if not values:
        return endpoint
    if "url" in values:
        await check_target(values["url"])
    if values.get("enabled"):
        values["disabled_reason"] = None
    values["updated_at"] = clock.now()
    return await repository.update_endpoint(conn, endpoint_id, values)


async def rotate_secret(
    conn: Connection, caller: Caller, endpoint_id: uuid.UUID
) -> tuple[WebhookEndpointOut, str]:
    """A new secret; the current one keeps signing (beside the new) for ``ROTATION_OVERLAP``. A
    second rotation within that time drops the oldest secret."""
    caller.require(SCOPE)
    await _live(conn, endpoint_id, lock=True)
    current, _, _ = await repository.secrets(conn, endpoint_id)
    secret = new_secret()
    now = clock.now()
    endpoint = await repository.update_endpoint(
        conn,
        endpoint_id,
        {
            "secret": secret,
            "previous_secret": current,
            "previous_secret_expires_at": now + ROTATION_OVERLAP,
            "updated_at": now,
        },
    )
    return endpoint, secret


async def delete_endpoint(
    conn: Connection, caller: Caller, endpoint_id: uuid.UUID, expected_version: int | None = None
) -> None:
    """Remove an endpoint: nothing more is delivered to it; its delivery log is kept."""
    caller.require(SCOPE)
    # The queue lock first, as settling deliveries takes it (then delivery rows, then the
    # endpoint's row): the other order could deadlock with a worker settling this endpoint.
    await repository.lock_queues(conn)
    await _live(conn, endpoint_id, expected_version, lock=True)
    now = clock.now()
    await repository.update_endpoint(
        conn, endpoint_id, {"deleted_at": now, "enabled": False, "updated_at": now}
    )
    await repository.cancel_pending(conn, endpoint_id)


# ----------------------------------------------------------------------------------- delivery log

TEST_EVENT_TYPE = "webhook.test"
TEST_MESSAGE = "A test delivery from Kehu: nothing changed."


async def list_deliveries(
    conn: Connection,
    caller: Caller,
    filters: WebhookDeliveryFilter,
    *,
    limit: int,
    cursor: str | None,
) -> Page[WebhookDeliveryOut]:
    """Deliveries, newest first, each with its last attempts (also those of removed endpoints:
    their log is kept)."""
    caller.require(SCOPE)
    query = repository.delivery_list_query(filters)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort=repository.DELIVERY_SORT)
    return dataclasses.replace(page, items=await repository.deliveries_from_rows(conn, page.items))


async def get_delivery(
    conn: Connection, caller: Caller, delivery_id: uuid.UUID
) -> WebhookDeliveryOut:
    caller.require(SCOPE)
    found = await repository.get_delivery(conn, delivery_id)
    if found is None:
        raise NotFound(f"No webhook delivery {delivery_id}.", code="webhook_delivery_not_found")
    return found


async def retry_delivery(
    conn: Connection, caller: Caller, delivery_id: uuid.UUID
) -> WebhookDeliveryOut:
    """Send a delivery again, now. A `failed` or `succeeded` one goes back to `pending` with a
    fresh retry schedule (`attempts` starts again from 0; its earlier attempts stay in the log);
    a `pending` one is made due now and keeps its count. Like any delivery it waits for earlier
    pending events of its customer to the same endpoint, and holds later ones back until it
    succeeds or gives up; a disabled endpoint's waits until the endpoint is enabled again. 409
    `webhook_endpoint_removed` for a removed endpoint's delivery, 409
    `webhook_event_unavailable` when its event is no longer in the event log (past its retention,
    or a test ping: send a new one)."""
    caller.require(SCOPE)
    # The queues' lock first, as the delivery engine takes it (before any row lock).
    await repository.lock_queues(conn)
    target = await repository.retry_target(conn, delivery_id)
    if target is None:
        raise NotFound(f"No webhook delivery {delivery_id}.", code="webhook_delivery_not_found")
    if target.endpoint_removed or target.status == "cancelled":
        raise Conflict(
            "The delivery's endpoint was removed; nothing is sent to it any more.",
            code="webhook_endpoint_removed",
        )
    if not target.event_kept:
        raise Conflict(
            "The delivery's event is no longer in the event log (past its retention, or a test "
            "ping), so it cannot be sent again.",
            code="webhook_event_unavailable",
        )
    await repository.requeue(conn, delivery_id, clock.now())
    return await get_delivery(conn, caller, delivery_id)


async def replay(conn: Connection, caller: Caller, payload: WebhookReplay) -> WebhookReplayResult:
    """Queue events of the event log for an endpoint again: those named, or that occurred in the
    range, and that the endpoint's `event_types` match (also from before it was registered).
    Each event is queued once however often it is replayed: an existing delivery of it goes back
    to `pending` (a fresh schedule if it had finished) instead of a second one being made. A
    disabled endpoint gets them once it is enabled again."""
    caller.require(SCOPE)
    # The queues' lock first, as the delivery engine takes it (before any row lock); then the
    # endpoint's: no removal meanwhile. A body's reference to nothing is a 422 (a path's is 404).
    await repository.lock_queues(conn)
    if await repository.get_live(conn, payload.endpoint_id, for_update=True) is None:
        raise ValidationFailed(
            "The webhook endpoint does not exist; see errors[].",
            errors=[{"field": "body.endpoint_id", "message": "no webhook endpoint has this id"}],
        )
    occurred = None
    if payload.from_ is not None and payload.to is not None:
        occurred = (payload.from_, payload.to)
    done = await repository.replay(
        conn,
        payload.endpoint_id,
        now=clock.now(),
        max_events=MAX_REPLAY_EVENTS,
        event_ids=payload.event_ids,
        occurred=occurred,
    )
    if done.matched > MAX_REPLAY_EVENTS:
        raise ValidationFailed(
            "Too many events to replay at once; see errors[].",
            errors=[
                {
                    "field": "body.to",
                    "message": f"more than {MAX_REPLAY_EVENTS:,} events match: replay a "
                    "shorter range, a part at a time",
                }
            ],
        )
    return WebhookReplayResult(
        queued=done.queued, new=done.queued - done.requeued, requeued=done.requeued
    )


async def ping_endpoint(
    conn: Connection, caller: Caller, endpoint_id: uuid.UUID
) -> WebhookAttemptOut:
    """Send a signed `webhook.test` event to the endpoint now (also when it is disabled) and
    return how it went. The ping is logged as a delivery with its one attempt (not retried) and
    counts in the endpoint's health; the event is not written to the event log. A target the SSRF
    guard refuses is an attempt with outcome `refused`."""
    caller.require(SCOPE)
    endpoint = await _live(conn, endpoint_id)
    secret, previous, previous_expires_at = await repository.secrets(conn, endpoint_id)
    now = clock.now()
    event = EventOut(
        id=new_id(),
        position=0,
        type=TEST_EVENT_TYPE,
        occurred_at=now,
        customer_id=None,
        sequence=None,
        data={"endpoint_id": str(endpoint_id), "message": TEST_MESSAGE},
        changes=None,
    )
    claimed = delivery.Claimed(
        delivery_id=new_id(),
        endpoint_id=endpoint_id,
        customer_id=None,
        attempts=0,
        url=endpoint.url,
        secrets=delivery.signing_secrets(secret, previous, previous_expires_at, now),
        event=event,
        include_pii=endpoint.include_pii,
    )
    async with delivery.new_client(target_policy(), max_connections=1) as client:
        attempt = await delivery.send(client, claimed, now)
    attempt_row = delivery.attempt_row(claimed.delivery_id, now, attempt)
    await repository.record_test(
        conn,
        {
            "id": claimed.delivery_id,
            "endpoint_id": endpoint_id,
            "event_id": event.id,
            "event_position": 0,
            "event_type": TEST_EVENT_TYPE,
            "customer_id": None,
            "status": "succeeded" if attempt.succeeded else "failed",
            "attempts": 1,
            "next_attempt_at": now,
            "last_attempt_at": now,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
            "delivered_at": now if attempt.succeeded else None,
            "created_at": now,
        },
        attempt_row,
    )
    await repository.mark_endpoint_health(
        conn,
        endpoint_id,
        succeeded_at=now if attempt.succeeded else None,
        failed_at=None if attempt.succeeded else now,
        error=attempt.error,
    )
    return WebhookAttemptOut.from_stored(attempt_row)
