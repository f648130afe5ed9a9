import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin


class WebhookEndpoint(IdMixin, TimestampMixin, Base):
    """A partner's URL that receives signed events. The signing secret is stored as it is (HMAC
    needs it, unlike an API key, which is only compared by hash); it leaves the service only in the
    answer that creates or rotates it."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(100)), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    # "metadata" is taken on declarative classes: the attribute is ``meta``, the column "metadata".
    meta: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    # The rule filter (a rule tree, app/rules; NULL: every customer). None is SQL NULL, never a
    # JSON null, so "no rule" has one spelling.
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Whether deliveries carry PII: the creating key had pii:read.
    include_pii: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    # Since when every attempt has failed (None after any success): 5 days of it disables.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(IdMixin, Base):
    """One event for one endpoint: sent until it succeeds or the retries run out.

    ``pending`` deliveries of one (endpoint, customer) go out one at a time in ``event_position``
    order: only the earliest (``is_head``) is ever due. ``leased_until`` marks one being sent; a worker that died
    while sending leaves its lease to expire, and the delivery is sent again (same ``webhook-id``).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending' AND is_head"),
        ),
        Index(
            "ix_webhook_deliveries_queue",
            "endpoint_id",
            "customer_id",
            "event_position",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
        # The delivery log, newest first, unfiltered.
        Index("ix_webhook_deliveries_created_at_id", "created_at", "id"),
        # An endpoint's health: its deliveries attempted in the last 24 hours.
        Index(
            "ix_webhook_deliveries_endpoint_id_last_attempt_at", "endpoint_id", "last_attempt_at"
        ),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    # No foreign key: the event log is purged after its retention, the delivery log separately.
    event_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    event_position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    customer_id: Mapped[uuid.UUID | None] = mapped_column()
    # pending, succeeded, failed (retries exhausted or endpoint gone), cancelled (endpoint removed)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The earliest pending delivery of its (endpoint, customer) queue: the only one that may go.
    is_head: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class WebhookAttempt(IdMixin, Base):
    """One HTTP attempt of a delivery, as the receiver answered it."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id", "attempted_at"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False
    )
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # success, http_error, timeout, connection_error, redirect, refused
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    response_excerpt: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(String(500))


class WebhookDispatchState(Base):
    """One row (id 1): the last event position fanned out into deliveries."""

    __tablename__ = "webhook_dispatch_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInteger, nullable=False)
