"""Every SQL statement about webhook endpoints (Core, typed results; secrets leave this module only
through the functions that name them)."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    FromClause,
    Numeric,
    Select,
    Table,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from app.core import clock
from app.db import Connection
from app.events.models import Event
from app.rules.compiler import compile_rule, customers_with_metrics
from app.rules.compiler import customers as rule_customers
from app.rules.schemas import Rule
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.schemas import (
    ATTEMPT_LOG_LENGTH,
    HEALTH_WINDOW,
    WebhookAttemptOut,
    WebhookDeliveryFilter,
    WebhookDeliveryOut,
    WebhookEndpointHealth,
    WebhookEndpointOut,
)

endpoints: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
deliveries: Table = WebhookDelivery.__table__  # type: ignore[assignment]
attempts: Table = WebhookAttempt.__table__  # type: ignore[assignment]
events: Table = Event.__table__  # type: ignore[assignment]
LIVE = endpoints.c.deleted_at.is_(None)

# The answer's stored columns (never the secrets); ``health`` is computed by ``_with_health``.
_STORED = [name for name in WebhookEndpointOut.model_fields if name != "health"]
# Health fields the endpoint row keeps (the delivery engine writes them after each batch).
_STORED_HEALTH = ("failing_since", "last_success_at", "last_error")
_HEALTH_FIELDS = tuple(WebhookEndpointHealth.model_fields)
_SINCE = bindparam("health_since", type_=DateTime(timezone=True))


def _with_health(source: FromClause, since: Any = _SINCE) -> Select[Any]:
    """The answer's columns of the endpoints in ``source`` (the table, or a CTE of rows just
    written), each with its health: the attempts since ``since`` (one LATERAL aggregate, through
    each delivery's ``last_attempt_at``) and the pending deliveries (the partial queue index), so
    a page of endpoints is one statement, not one per endpoint."""
    endpoint_id = source.c.id
    recent = (
        select(
            func.count().label("attempts"),
            func.count().filter(attempts.c.outcome == "success").label("succeeded"),
        )
        .select_from(deliveries.join(attempts, attempts.c.delivery_id == deliveries.c.id))
        .where(
            deliveries.c.endpoint_id == endpoint_id,
            deliveries.c.last_attempt_at >= since,
            attempts.c.attempted_at >= since,
        )
        .lateral("recent")
    )
    backlog = (
        select(func.count())
        .select_from(deliveries)
        .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending")
        .scalar_subquery()
    )
    rate = func.round(cast(recent.c.succeeded, Numeric) / func.nullif(recent.c.attempts, 0), 4)
    return select(
        *[source.c[name] for name in _STORED],
        *[source.c[name].label(f"health_{name}") for name in _STORED_HEALTH],
        cast(rate, Float).label("health_success_rate"),
        recent.c.attempts.label("health_attempts_24h"),
        backlog.label("health_backlog"),
    ).select_from(source.join(recent, true()))


def endpoint_from_row(row: Any) -> WebhookEndpointOut:
    """An endpoint from a row of ``_with_health``."""
    values = row._mapping
    health = {name: values[f"health_{name}"] for name in _HEALTH_FIELDS}
    return WebhookEndpointOut.from_stored({**values, "health": health})


def _since(now: datetime | None = None) -> datetime:
    return (now or clock.now()) - HEALTH_WINDOW


_GET_LIVE = _with_health(endpoints).where(endpoints.c.id == bindparam("endpoint_id"), LIVE)
_GET_LIVE_FOR_UPDATE = _GET_LIVE.with_for_update(of=endpoints)


async def _written(
    conn: Connection, statement: ReturningInsert[Any] | ReturningUpdate[Any], now: datetime | None
) -> WebhookEndpointOut | None:
    """The endpoint an INSERT or UPDATE (``...returning(*endpoints.c)``) wrote, with its health,
    in the same statement; None if it wrote nothing."""
    written = _with_health(statement.cte("written"))
    row = (await conn.execute(written, {"health_since": _since(now)})).first()
    return None if row is None else endpoint_from_row(row)


async def insert_endpoint(conn: Connection, values: dict[str, Any]) -> WebhookEndpointOut:
    statement = insert(endpoints).values(**values).returning(*endpoints.c)
    written = await _written(conn, statement, values.get("created_at"))
    assert written is not None
    return written


async def get_live(
    conn: Connection, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpointOut | None:
    statement = _GET_LIVE_FOR_UPDATE if for_update else _GET_LIVE
    params = {"endpoint_id": endpoint_id, "health_since": _since()}
    row = (await conn.execute(statement, params)).first()
    return None if row is None else endpoint_from_row(row)


async def update_endpoint(
    conn: Connection, endpoint_id: uuid.UUID, values: dict[str, Any]
) -> WebhookEndpointOut:
    """Apply ``values`` (by column name) and bump the version."""
    statement = (
        update(endpoints)
        .where(endpoints.c.id == endpoint_id, LIVE)
        .values(**values, version=endpoints.c.version + 1)
        .returning(*endpoints.c)
    )
    written = await _written(conn, statement, None)
    if written is None:
        raise LookupError(f"no live webhook endpoint {endpoint_id}")
    return written


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


def list_query(now: datetime | None = None) -> Select[Any]:
    """Every live endpoint with its health, oldest first, for ``fetch_page`` (rows for
    ``endpoint_from_row``)."""
    since = bindparam("health_since", _since(now), type_=DateTime(timezone=True))
    return (
        _with_health(endpoints, since).where(LIVE).order_by(endpoints.c.created_at, endpoints.c.id)
    )


# ------------------------------------------------------------------------------------- deliveries

# Queues: the pending deliveries of one (endpoint, customer) go out one at a time, in
# event_position order. ``is_head`` marks the one that may go (the earliest pending; every
# delivery without a customer is a head of its own), so a claim is an index range scan however
# long the queues are. Whatever changes which delivery is earliest (dispatch adding, settle
# finishing, retry and replay re-queueing) runs under QUEUE_LOCK and then ``refresh_heads``: one
# at a time, so two transactions cannot each miss the other's change and leave a queue headless.
QUEUE_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('kehu.webhooks.queues', 0))")
_REFRESH_HEADS = text(
    """
    WITH queues AS (
        SELECT DISTINCT endpoint_id, customer_id
        FROM unnest(CAST(:endpoint_ids AS uuid[]), CAST(:customer_ids AS uuid[]))
             AS q(endpoint_id, customer_id)
    ),
    firsts AS (
        SELECT DISTINCT ON (d.endpoint_id, d.customer_id) d.id
        FROM webhook_deliveries d
        JOIN queues q ON d.endpoint_id = q.endpoint_id AND d.customer_id = q.customer_id
        WHERE d.status = 'pending'
        ORDER BY d.endpoint_id, d.customer_id, d.event_position
    )
    UPDATE webhook_deliveries d
    SET is_head = d.id IN (SELECT id FROM firsts)
    FROM queues q
    WHERE d.endpoint_id = q.endpoint_id AND d.customer_id = q.customer_id
      AND d.status = 'pending' AND d.is_head <> (d.id IN (SELECT id FROM firsts))
    """
)


async def lock_queues(conn: Connection) -> None:
    await conn.execute(QUEUE_LOCK)


async def refresh_heads(
    conn: Connection, queues: Iterable[tuple[uuid.UUID, uuid.UUID | None]]
) -> None:
    """Make the earliest pending delivery of each (endpoint, customer) queue its only head.
    Call under ``lock_queues``; queues without a customer need nothing."""
    pairs = {(endpoint_id, customer_id) for endpoint_id, customer_id in queues if customer_id}
    if pairs:
        endpoint_ids, customer_ids = zip(*pairs, strict=True)
        await conn.execute(
            _REFRESH_HEADS, {"endpoint_ids": list(endpoint_ids), "customer_ids": list(customer_ids)}
        )


# Whether endpoint ``w``'s event-type filter matches event ``{event}``: `*`, `<resource>.*` or the
# type itself (as ``app.events.schemas.type_pattern_matches``).
_MATCHES_FILTER = """EXISTS (
                SELECT 1 FROM unnest(w.event_types) AS p
                WHERE p = '*' OR p = {event}.type
                   OR (right(p, 2) = '.*' AND starts_with({event}.type, left(p, -1)))
             )"""


# Fan-out: the next stamped events after the dispatch position become one pending delivery per
# enabled endpoint whose filter matches (and that existed when the event occurred), and the
# position advances, in one statement. Run under QUEUE_LOCK, one dispatcher at a time.
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
            attempts, next_attempt_at, created_at, is_head
        )
        SELECT gen_random_uuid(), w.id, b.id, b.position, b.type, b.customer_id, 'pending',
               0, :now, :now, b.customer_id IS NULL
        FROM batch b
        JOIN webhook_endpoints w
          ON w.deleted_at IS NULL AND w.enabled AND w.created_at <= b.occurred_at
         AND w.rule IS NULL AND {matches}
        ON CONFLICT (endpoint_id, event_id) DO NOTHING
        RETURNING endpoint_id, customer_id
    ),
    advanced AS (
        UPDATE webhook_dispatch_state
        SET last_position = (SELECT max(position) FROM batch)
        WHERE id = 1 AND EXISTS (SELECT 1 FROM batch)
        RETURNING 1
    ),
    queues AS (
        SELECT DISTINCT endpoint_id, customer_id FROM inserted WHERE customer_id IS NOT NULL
    )
    SELECT (SELECT count(*) FROM batch) AS events,
           (SELECT min(position) FROM batch) AS first_position,
           (SELECT max(position) FROM batch) AS last_position,
           (SELECT count(*) FROM inserted) AS deliveries,
           (SELECT array_agg(endpoint_id ORDER BY endpoint_id, customer_id) FROM queues)
               AS queue_endpoint_ids,
           (SELECT array_agg(customer_id ORDER BY endpoint_id, customer_id) FROM queues)
               AS queue_customer_ids
    """.format(matches=_MATCHES_FILTER.format(event="b"))
)


async def dispatch(conn: Connection, *, now: datetime, batch_size: int) -> tuple[int, int]:
    """One fan-out pass in the caller's transaction: (events read, deliveries created). The new
    deliveries join their queues (``refresh_heads``). Endpoints with a rule filter get theirs
    from the same batch, one statement each (``_ruled_deliveries``)."""
    await lock_queues(conn)
    row = (await conn.execute(_DISPATCH, {"now": now, "batch_size": batch_size})).one()
    queues = set(zip(row.queue_endpoint_ids or (), row.queue_customer_ids or (), strict=True))
    deliveries = int(row.deliveries)
    if row.events:
        for endpoint_id, rule in await conn.execute(_RULED_ENDPOINTS):
            statement = _ruled_deliveries(
                endpoint_id, Rule.parse(rule), now, row.first_position, row.last_position
            )
            inserted = list(await conn.execute(statement))
            deliveries += len(inserted)
            queues.update((r.endpoint_id, r.customer_id) for r in inserted)
    if queues:
        await refresh_heads(conn, sorted(queues))
    return int(row.events), deliveries


_RULED_ENDPOINTS = (
    select(endpoints.c.id, endpoints.c.rule)
    .where(LIVE, endpoints.c.enabled, endpoints.c.rule.is_not(None))
    .order_by(endpoints.c.id)
)


def _ruled_deliveries(
    endpoint_id: uuid.UUID, rule: Rule, now: datetime, first: int, last: int
) -> ReturningInsert[Any]:
    """The deliveries of the events at positions ``first``..``last`` for an endpoint with a rule
    filter: events about a customer the rule matches now, of the types the endpoint takes."""
    compiled = compile_rule(rule, now)
    event = events.alias("e")
    target = endpoints.alias("w")
    about = customers_with_metrics() if compiled.uses_metrics else rule_customers
    rows = (
        select(
            func.gen_random_uuid(),
            target.c.id,
            event.c.id,
            event.c.position,
            event.c.type,
            event.c.customer_id,
            literal("pending"),
            literal(0),
            literal(now, DateTime(timezone=True)),
            literal(now, DateTime(timezone=True)),
            false(),
        )
        .select_from(
            event.join(about, rule_customers.c.id == event.c.customer_id).join(
                target, target.c.id == endpoint_id
            )
        )
        .where(
            event.c.position.between(first, last),
            target.c.created_at <= event.c.occurred_at,
            text(_MATCHES_FILTER.format(event="e")),
            compiled.predicate,
        )
    )
    columns = [
        "id",
        "endpoint_id",
        "event_id",
        "event_position",
        "event_type",
        "customer_id",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
        "is_head",
    ]
    return (
        pg_insert(deliveries)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        .returning(deliveries.c.endpoint_id, deliveries.c.customer_id)
    )


# Claim: due queue heads, leased for one attempt.
_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id
        FROM webhook_deliveries d
        JOIN webhook_endpoints w ON w.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.is_head
          AND d.next_attempt_at <= :now
          AND (d.leased_until IS NULL OR d.leased_until < :now)
          AND w.enabled AND w.deleted_at IS NULL
        ORDER BY d.next_attempt_at, d.event_position
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET leased_until = :leased_until
    FROM due, events ev, webhook_endpoints w
    WHERE d.id = due.id AND ev.id = d.event_id AND w.id = d.endpoint_id
    RETURNING d.id, d.endpoint_id, d.attempts, d.customer_id AS queue_customer_id,
              w.url, w.secret, w.previous_secret,
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


_SETTLE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=deliveries.c.attempts + 1,
        next_attempt_at=bindparam("b_next_attempt_at"),
        leased_until=None,
        is_head=bindparam("b_status") == "pending",
        last_attempt_at=bindparam("b_attempted_at"),
        last_status_code=bindparam("b_status_code"),
        last_error=bindparam("b_error"),
        delivered_at=bindparam("b_delivered_at"),
    )
)


async def settle(
    conn: Connection, settled: list[dict[str, Any]], attempt_rows: list[dict[str, Any]]
) -> None:
    """Record attempts and each delivery's new state (``b_``-prefixed keys, see ``_SETTLE``);
    a finished delivery hands its queue to the next (``b_queue``: its (endpoint, customer))."""
    await lock_queues(conn)
    if attempt_rows:
        await conn.execute(insert(attempts), attempt_rows)
    if settled:
        await conn.execute(
            _SETTLE, [{k: v for k, v in r.items() if k != "b_queue"} for r in settled]
        )
        await refresh_heads(conn, [r["b_queue"] for r in settled if r["b_status"] != "pending"])


async def mark_endpoint_health(
    conn: Connection,
    endpoint_id: uuid.UUID,
    *,
    succeeded_at: datetime | None,
    failed_at: datetime | None,
    error: str | None,
) -> None:
    """After a batch of attempts: any success clears ``failing_since``; failures only start it.
    (Returns nothing: the delivery engine runs it per endpoint per batch, and the endpoint's
    health would cost a count of its pending deliveries and recent attempts each time.)"""
    values: dict[str, Any] = {}
    if succeeded_at is not None:
        values.update(failing_since=None, last_success_at=succeeded_at)
    elif failed_at is not None:
        values.update(
            failing_since=func.coalesce(endpoints.c.failing_since, failed_at), last_error=error
        )
    await conn.execute(update(endpoints).where(endpoints.c.id == endpoint_id).values(**values))


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
        .returning(*endpoints.c)
    )
    return await _written(conn, statement, now)


async def cancel_pending(conn: Connection, endpoint_id: uuid.UUID) -> None:
    """An endpoint removed: its pending deliveries will never be sent."""
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending")
        .values(status="cancelled", leased_until=None)
    )


async def backlog(conn: Connection) -> int:
    """Pending deliveries, every endpoint."""
    query = select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
    return int((await conn.execute(query)).scalar_one())


# ----------------------------------------------------------------------------------- delivery log

# A delivery's answer: ``next_attempt_at`` only while pending (the column always has a value).
_DELIVERY_COLUMNS = [
    *(
        deliveries.c[name]
        for name in WebhookDeliveryOut.model_fields
        if name not in ("next_attempt_at", "attempt_log")
    ),
    case((deliveries.c.status == "pending", deliveries.c.next_attempt_at)).label("next_attempt_at"),
]
DELIVERY_SORT = "-created_at"


def delivery_list_query(filters: WebhookDeliveryFilter) -> Select[Any]:
    """The filtered deliveries, newest first, for ``fetch_page`` (rows for
    ``deliveries_from_rows``)."""
    conditions = []
    if filters.endpoint_id is not None:
        conditions.append(deliveries.c.endpoint_id == filters.endpoint_id)
    if filters.status is not None:
        conditions.append(deliveries.c.status == filters.status.value)
    if filters.event_id is not None:
        conditions.append(deliveries.c.event_id == filters.event_id)
    return (
        select(*_DELIVERY_COLUMNS)
        .where(*conditions)
        .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
    )


_ATTEMPT_COLUMNS = [attempts.c[name] for name in WebhookAttemptOut.model_fields]
# The last attempts of each delivery: a LATERAL ``LIMIT`` per delivery on the
# (delivery_id, attempted_at) index, for a page of deliveries in one statement.
_RECENT_ATTEMPTS = (
    select(attempts.c.id, attempts.c.delivery_id, *_ATTEMPT_COLUMNS)
    .where(attempts.c.delivery_id == deliveries.c.id)
    .order_by(attempts.c.attempted_at.desc(), attempts.c.id.desc())
    .limit(ATTEMPT_LOG_LENGTH)
    .lateral("recent")
)
_ATTEMPT_LOGS = (
    select(_RECENT_ATTEMPTS)
    .select_from(deliveries.join(_RECENT_ATTEMPTS, true()))
    .where(deliveries.c.id.in_(bindparam("delivery_ids", expanding=True)))
    .order_by(_RECENT_ATTEMPTS.c.attempted_at.desc(), _RECENT_ATTEMPTS.c.id.desc())
)


async def deliveries_from_rows(conn: Connection, rows: Sequence[Any]) -> list[WebhookDeliveryOut]:
    """Deliveries from rows of ``delivery_list_query``, each with its attempt log (one query for
    all of them)."""
    if not rows:
        return []
    logs: dict[uuid.UUID, list[Any]] = {row.id: [] for row in rows}
    result = await conn.execute(_ATTEMPT_LOGS, {"delivery_ids": list(logs)})
    for attempt in result:
        logs[attempt.delivery_id].append(attempt._mapping)
    return [
        WebhookDeliveryOut.from_stored({**row._mapping, "attempt_log": logs[row.id]})
        for row in rows
    ]


_GET_DELIVERY = select(*_DELIVERY_COLUMNS).where(deliveries.c.id == bindparam("delivery_id"))


async def get_delivery(conn: Connection, delivery_id: uuid.UUID) -> WebhookDeliveryOut | None:
    row = (await conn.execute(_GET_DELIVERY, {"delivery_id": delivery_id})).first()
    if row is None:
        return None
    (found,) = await deliveries_from_rows(conn, [row])
    return found


@dataclass(frozen=True)
class RetryTarget:
    """What decides whether a delivery can be sent again."""

    status: str
    endpoint_removed: bool
    # Whether its event is still in the event log (purged after its retention; a test ping's
    # event never is): a delivery is sent from there.
    event_kept: bool


_RETRY_TARGET = (
    select(
        deliveries.c.status,
        endpoints.c.deleted_at.is_not(None).label("endpoint_removed"),
        exists()
        .where(events.c.id == deliveries.c.event_id, events.c.position.is_not(None))
        .label("event_kept"),
    )
    .select_from(deliveries.join(endpoints, endpoints.c.id == deliveries.c.endpoint_id))
    .where(deliveries.c.id == bindparam("delivery_id"))
    .with_for_update(of=deliveries)
)


async def retry_target(conn: Connection, delivery_id: uuid.UUID) -> RetryTarget | None:
    """The delivery's state, locked until the transaction ends; None if there is none."""
    row = (await conn.execute(_RETRY_TARGET, {"delivery_id": delivery_id})).first()
    return None if row is None else RetryTarget(row.status, row.endpoint_removed, row.event_kept)


async def requeue(conn: Connection, delivery_id: uuid.UUID, now: datetime) -> None:
    """Due now; a finished delivery starts a fresh retry schedule (``attempts`` back to 0), a
    pending one keeps its count. It takes its place in its queue (``refresh_heads``: call under
    ``lock_queues``, taken before the delivery's row lock). A lease (an attempt in flight) is left
    to end: its result then decides, so the delivery is not sent twice at once."""
    statement = (
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status="pending",
            next_attempt_at=now,
            attempts=case((deliveries.c.status == "pending", deliveries.c.attempts), else_=0),
            delivered_at=None,
            is_head=deliveries.c.customer_id.is_(None),
        )
        .returning(deliveries.c.endpoint_id, deliveries.c.customer_id)
    )
    row = (await conn.execute(statement)).one()
    await refresh_heads(conn, [(row.endpoint_id, row.customer_id)])


# Replay: the endpoint's matching stamped events (its filter as in _DISPATCH) become pending
# deliveries, existing ones going back to pending, in one statement; nothing is written when more
# than :max_events match (the caller refuses the replay). Then the customers' queues get their
# heads again (``refresh_heads``), so run under QUEUE_LOCK.
_REPLAY = """
    WITH matched AS (
        SELECT e.id, e.position, e.type, e.customer_id
        FROM events e
        JOIN webhook_endpoints w ON w.id = :endpoint_id
        WHERE e.position IS NOT NULL AND ({selection})
          AND {matches}
        LIMIT :max_matched
    ),
    existing AS (
        SELECT d.event_id FROM webhook_deliveries d
        WHERE d.endpoint_id = :endpoint_id AND d.event_id IN (SELECT id FROM matched)
    ),
    upserted AS (
        INSERT INTO webhook_deliveries AS d (
            id, endpoint_id, event_id, event_position, event_type, customer_id, status,
            attempts, next_attempt_at, created_at, is_head
        )
        SELECT gen_random_uuid(), :endpoint_id, m.id, m.position, m.type, m.customer_id,
               'pending', 0, :now, :now, m.customer_id IS NULL
        FROM matched m
        WHERE (SELECT count(*) FROM matched) <= :max_events
        ON CONFLICT (endpoint_id, event_id) DO UPDATE
        SET status = 'pending',
            attempts = CASE WHEN d.status = 'pending' THEN d.attempts ELSE 0 END,
            next_attempt_at = excluded.next_attempt_at,
            delivered_at = NULL,
            is_head = d.customer_id IS NULL
        RETURNING d.customer_id
    )
    SELECT (SELECT count(*) FROM matched) AS matched,
           (SELECT count(*) FROM upserted) AS queued,
           (SELECT count(*) FROM existing) AS existing,
           (SELECT array_agg(DISTINCT customer_id) FROM upserted WHERE customer_id IS NOT NULL)
               AS customer_ids
"""
_REPLAY_IDS = text(
    _REPLAY.format(selection="e.id = ANY(:event_ids)", matches=_MATCHES_FILTER.format(event="e"))
)
_REPLAY_RANGE = text(
    _REPLAY.format(
        selection="e.occurred_at >= :from_time AND e.occurred_at < :to_time",
        matches=_MATCHES_FILTER.format(event="e"),
    )
)


@dataclass(frozen=True)
class Replayed:
    matched: int  # events matched (at most max_events + 1)
    queued: int  # deliveries now pending (0 when more than max_events matched)
    requeued: int  # of which existed before


async def replay(
    conn: Connection,
    endpoint_id: uuid.UUID,
    *,
    now: datetime,
    max_events: int,
    event_ids: Sequence[uuid.UUID] | None = None,
    occurred: tuple[datetime, datetime] | None = None,
) -> Replayed:
    """Queue the endpoint's matching events (``event_ids``, or ``occurred`` in [from, to)).
    Call under ``lock_queues``."""
    params: dict[str, Any] = {
        "endpoint_id": endpoint_id,
        "now": now,
        "max_events": max_events,
        "max_matched": max_events + 1,
    }
    if event_ids is not None:
        statement, params["event_ids"] = _REPLAY_IDS, list(event_ids)
    else:
        assert occurred is not None
        statement = _REPLAY_RANGE
        params["from_time"], params["to_time"] = occurred
    row = (await conn.execute(statement, params)).one()
    if row.customer_ids:
        await refresh_heads(conn, [(endpoint_id, customer) for customer in row.customer_ids])
    queued = int(row.queued)
    return Replayed(int(row.matched), queued, int(row.existing) if queued else 0)


async def record_test(conn: Connection, delivery: dict[str, Any], attempt: dict[str, Any]) -> None:
    """A test ping, already sent: its delivery (finished) and its one attempt, for the log."""
    await conn.execute(insert(deliveries).values(**delivery))
    await conn.execute(insert(attempts).values(**attempt))
