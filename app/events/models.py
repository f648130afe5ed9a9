import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from app.db.base import Base, IdMixin


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id; orders events by the transaction that wrote them."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


class Event(IdMixin, Base):
    """The event log (outbox): one row per change, written in the change's own transaction.

    ``tx_id`` and ``position`` give the feed an order that never skips a late-committing transaction:
    the feed only shows rows whose transaction is older than every transaction still running.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tx_id_position", "tx_id", "position"),
        Index(
            "uq_events_customer_id_sequence",
            "customer_id",
            "sequence",
            unique=True,
            postgresql_where=text("customer_id IS NOT NULL"),
        ),
        Index("ix_events_occurred_at", "occurred_at"),
    )

    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False)
    tx_id: Mapped[int] = mapped_column(
        Xid8(), nullable=False, server_default=text("pg_current_xact_id()")
    )
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    customer_id: Mapped[uuid.UUID | None] = mapped_column()
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class CustomerEventSequence(Base):
    """The last event sequence number handed out per customer; its row lock orders that customer's events."""

    __tablename__ = "customer_event_sequences"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, nullable=False)


# Teach the PostgreSQL dialect's reflection the type, so migration checks compare it instead of warning.
ischema_names["xid8"] = Xid8
