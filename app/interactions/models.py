import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.ids import new_id
from app.db.base import Base, TimestampMixin


class Interaction(TimestampMixin, Base):
    """One contact with a customer on a channel, or (``status`` planned, with ``due_at``) a
    follow-up still to make. Belongs to its customer: ``customer_id`` leads the primary key and
    the foreign keys (Citus, ARCHITECTURE.md)."""

    __tablename__ = "interactions"
    __table_args__ = (
        ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        # A link to a case of the same customer (the composite key makes a cross-customer link
        # impossible); unlinked when the case goes.
        ForeignKeyConstraint(
            ["customer_id", "case_id"],
            ["cases.customer_id", "cases.id"],
            ondelete="SET NULL (case_id)",
        ),
        # The order it is about, one of the same customer's; unlinked when the order goes.
        ForeignKeyConstraint(
            ["customer_id", "order_id"],
            ["orders.customer_id", "orders.id"],
            ondelete="SET NULL (order_id)",
        ),
        Index("ix_interactions_id", "id"),
        # (source, external_id) is the partner's identity of an interaction: the same pair is
        # the same interaction, whoever sends it again.
        Index(
            "uq_interactions_source_external_id",
            "source",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index("ix_interactions_customer_id_occurred_at_id", "customer_id", "occurred_at", "id"),
        Index("ix_interactions_occurred_at_id", "occurred_at", "id"),
        Index(
            "ix_interactions_case",
            "customer_id",
            "case_id",
            "occurred_at",
            postgresql_where=text("case_id IS NOT NULL"),
        ),
        # Follow-ups: the list by due date and the job's scan for due ones not yet announced.
        Index(
            "ix_interactions_follow_ups_due_at_id",
            "due_at",
            "id",
            postgresql_where=text("due_at IS NOT NULL"),
        ),
        Index(
            "ix_interactions_follow_ups_unannounced",
            "due_at",
            postgresql_where=text("status = 'planned' AND due_announced_at IS NULL"),
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    # completed (it happened), planned (a follow-up), cancelled (a follow-up dropped).
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(500))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # When it happened; for a planned follow-up, when it was planned (logged).
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When follow_up.due was emitted for this follow-up (once).
    due_announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    case_id: Mapped[uuid.UUID | None] = mapped_column()
    order_id: Mapped[uuid.UUID | None] = mapped_column()
    source: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
