"""Every SQL statement about webhook endpoints (Core, typed results; secrets leave this module only
through the functions that name them)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, insert, select, text, update

from app.db import Connection
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.schemas import WebhookEndpointOut

endpoints: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
LIVE = endpoints.c.deleted_at.is_(None)
# The answer's columns (never the secrets).
_PUBLIC = [endpoints.c[name] for name in WebhookEndpointOut.model_fields]
_GET_LIVE = select(*_PUBLIC).where(endpoints.c.id == bindparam("endpoint_id"), LIVE)
_GET_LIVE_FOR_UPDATE = _GET_LIVE.with_for_update()


def _endpoint(row: Any) -> WebhookEndpointOut:
    return WebhookEndpointOut.from_stored(row._mapping)


async def insert_endpoint(conn: Connection, values: dict[str, Any]) -> WebhookEndpointOut:
    statement = insert(endpoints).values(**values).returning(*_PUBLIC)
    return _endpoint((await conn.execute(statement)).one())


async def get_live(
    conn: Connection, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpointOut | None:
    statement = _GET_LIVE_FOR_UPDATE if for_update else _GET_LIVE
    row = (await conn.execute(statement, {"endpoint_id": endpoint_id})).first()
    return None if row is None else _endpoint(row)


async def update_endpoint(
    conn: Connection, endpoint_id: uuid.UUID, values: dict[str, Any]
) -> WebhookEndpointOut:
    """Apply ``values`` (by column name) and bump the version."""
    statement = (
        update(endpoints)
        .where(endpoints.c.id == endpoint_id, LIVE)
        .values(**values, version=endpoints.c.version + 1)
        .returning(*_PUBLIC)
    )
    return _endpoint((await conn.execute(statement)).one())


async def secrets(
    conn: Connection, endpoint_id: uuid.UUID
) -> tuple[str, str | None, datetime | None]:
    """The current secret, and the previous one with its expiry (None when not rotating)."""
    row = (
        await conn.execute(
            select(
                endpoints.c.secret,
                endpoints.c.previous_secret,
                endpoints.c.previous_secret_expires_at,
            ).where(endpoints.c.id == endpoint_id)
        )
    ).one()
    return row.secret, row.previous_secret, row.previous_secret_expires_at


LIST_SORT = "created_at"


def list_query() -> Select[Any]:
    """Every live endpoint, oldest first, for ``fetch_page``."""
    return select(*_PUBLIC).where(LIVE).order_by(endpoints.c.created_at, endpoints.c.id)


# ------------------------------------------------------------------------------------- deliveries

# Fan-out: the next stamped events after the dispatch position become one pending delivery per
# enabled endpoint whose filter matches (and that existed when the event occurred), and the
# position advances, in one statement. Run under DISPATCH_LOCK, one dispatcher at a time.
DISPATCH_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('kehu.webhooks.dispatch', 0))")
_DISPATCH = text(
    """
    WITH batch AS (
        SELECT e.id, e.position, e.type, e.customer_id, e.occurred_at
        FROM events e
        WHERE e.position > (SELECT last_position FROM webhook_dispatch_state WHERE id = 1)
        ORDER BY e.position
        LIMIT :batch_size
    ),
    inserted AS (
        INSERT INTO webhook_deliveries AS d (
            id, endpoint_id, event_id, event_position, event_type, customer_id, status,
            attempts, next_attempt_at, created_at
        )
        SELECT gen_random_uuid(), w.id, b.id, b.position, b.type, b.customer_id, 'pending',
               0, :now, :now
        FROM batch b
        JOIN webhook_endpoints w
          ON w.deleted_at IS NULL AND w.enabled AND w.created_at <= b.occurred_at
         AND EXISTS (
                SELECT 1 FROM unnest(w.event_types) AS p
                WHERE p = '*' OR p = b.type
                   OR (right(p, 2) = '.*' AND starts_with(b.type, left(p, -1)))
             )
        ON CONFLICT (endpoint_id, event_id) DO NOTHING
        RETURNING 1
    ),
    advanced AS (
        UPDATE webhook_dispatch_state
        SET last_position = (SELECT max(position) FROM batch)
        WHERE id = 1 AND EXISTS (SELECT 1 FROM batch)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM batch) AS events, (SELECT count(*) FROM inserted) AS deliveries
    """
)


async def dispatch(conn: Connection, *, now: datetime, batch_size: int) -> tuple[int, int]:
    """One fan-out pass in the caller's transaction: (events read, deliveries created)."""
    await conn.execute(DISPATCH_LOCK)
    row = (await conn.execute(_DISPATCH, {"now": now, "batch_size": batch_size})).one()
    return int(row.events), int(row.deliveries)


# Claim: the due deliveries that head their (endpoint, customer) queue, leased for one attempt.
_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id
        FROM webhook_deliveries d
        JOIN webhook_endpoints w ON w.id = d.endpoint_id
        WHERE d.status = 'pending'
          AND d.next_attempt_at <= :now
          AND (d.leased_until IS NULL OR d.leased_until < :now)
          AND w.enabled AND w.deleted_at IS NULL
          AND (d.customer_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM webhook_deliveries earlier
                WHERE earlier.endpoint_id = d.endpoint_id
                  AND earlier.customer_id = d.customer_id
                  AND earlier.status = 'pending'
                  AND earlier.event_position < d.event_position
          ))
        ORDER BY d.next_attempt_at, d.event_position
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET leased_until = :leased_until
    FROM due, events ev, webhook_endpoints w
    WHERE d.id = due.id AND ev.id = d.event_id AND w.id = d.endpoint_id
    RETURNING d.id, d.endpoint_id, d.attempts, w.url, w.secret, w.previous_secret,
              w.previous_secret_expires_at, w.include_pii,
              ev.id AS event_id, ev.position, ev.type AS event_type, ev.occurred_at, ev.customer_id,
              ev.sequence, ev.data, ev.changes
    """
)


async def claim(
    conn: Connection, *, now: datetime, leased_until: datetime, limit: int
) -> list[Any]:
    result = await conn.execute(_CLAIM, {"now": now, "leased_until": leased_until, "limit": limit})
    return list(result.all())


deliveries: Table = WebhookDelivery.__table__  # type: ignore[assignment]
attempts: Table = WebhookAttempt.__table__  # type: ignore[assignment]

_SETTLE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=deliveries.c.attempts + 1,
        next_attempt_at=bindparam("b_next_attempt_at"),
        leased_until=None,
        last_attempt_at=bindparam("b_attempted_at"),
        last_status_code=bindparam("b_status_code"),
        last_error=bindparam("b_error"),
        delivered_at=bindparam("b_delivered_at"),
    )
)


async def settle(
    conn: Connection, settled: list[dict[str, Any]], attempt_rows: list[dict[str, Any]]
) -> None:
    """Record attempts and each delivery's new state (``b_``-prefixed keys, see ``_SETTLE``)."""
    if attempt_rows:
        await conn.execute(insert(attempts), attempt_rows)
    if settled:
        await conn.execute(_SETTLE, settled)


async def mark_endpoint_health(
    conn: Connection,
    endpoint_id: uuid.UUID,
    *,
    succeeded_at: datetime | None,
    failed_at: datetime | None,
    error: str | None,
) -> WebhookEndpointOut:
    """After a batch of attempts: any success clears ``failing_since``; failures only start it."""
    values: dict[str, Any] = {}
    if succeeded_at is not None:
        values.update(failing_since=None, last_success_at=succeeded_at)
    elif failed_at is not None:
        values.update(
            failing_since=func.coalesce(endpoints.c.failing_since, failed_at), last_error=error
        )
    statement = (
        update(endpoints).where(endpoints.c.id == endpoint_id).values(**values).returning(*_PUBLIC)
    )
    return _endpoint((await conn.execute(statement)).one())


async def failing_since(conn: Connection, endpoint_id: uuid.UUID) -> datetime | None:
    query = select(endpoints.c.failing_since).where(endpoints.c.id == endpoint_id)
    value: datetime | None = (await conn.execute(query)).scalar_one()
    return value


async def disable(
    conn: Connection, endpoint_id: uuid.UUID, reason: str, now: datetime
) -> WebhookEndpointOut | None:
    """Turn an enabled endpoint off; None if it already was."""
    statement = (
        update(endpoints)
        .where(endpoints.c.id == endpoint_id, endpoints.c.enabled)
        .values(
            enabled=False,
            disabled_reason=reason,
            updated_at=now,
            version=endpoints.c.version + 1,
        )
        .returning(*_PUBLIC)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else _endpoint(row)


async def cancel_pending(conn: Connection, endpoint_id: uuid.UUID) -> None:
    """An endpoint removed: its pending deliveries will never be sent."""
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending")
        .values(status="cancelled", leased_until=None)
    )
