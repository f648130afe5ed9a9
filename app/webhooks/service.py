"""Webhook endpoints: register, list, change, rotate the secret, remove."""

import base64
import secrets
import uuid
from datetime import timedelta
from typing import Any

from app.core import clock
from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import NotFound, ValidationFailed
from app.core.http import check_version
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.db import Connection
from app.webhooks import repository, ssrf
from app.webhooks.schemas import WebhookEndpointCreate, WebhookEndpointOut, WebhookEndpointUpdate

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
    return page.mapped(lambda row: WebhookEndpointOut.from_stored(row._mapping))


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
    await _live(conn, endpoint_id, expected_version, lock=True)
    now = clock.now()
    await repository.update_endpoint(
        conn, endpoint_id, {"deleted_at": now, "enabled": False, "updated_at": now}
    )
    await repository.cancel_pending(conn, endpoint_id)
