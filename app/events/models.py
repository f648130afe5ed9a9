import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, SmallInteger, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from app.db.base import Base, IdMixin


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id. No model uses it any more; the first migration (and the
    downgrade of the event-positions one) still create the old ``events.tx_id`` column with it."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


class Event(IdMixin, Base):
    """The event log (outbox): one row per change, written in the change's own transaction.

    ``position`` is NULL when the row is written; the sequencer (``app.events.sequencer``) stamps
    committed rows with the next feed positions, so the feed's order is an order of commits.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index(
            "uq_events_position",
            "position",
            unique=True,
            postgresql_where=text("position IS NOT NULL"),
        ),
        Index(
            "ix_events_unstamped", "occurred_at", "id", postgresql_where=text("position IS NULL")
        ),
        Index(
            "uq_events_customer_id_sequence",
            "customer_id",
            "sequence",
            unique=True,
            postgresql_where=text("customer_id IS NOT NULL"),
        ),
        Index("ix_events_occurred_at", "occurred_at"),
    )

    position: Mapped[int | None] = mapped_column(BigInteger)
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


class EventFeedState(Base):
    """One row (id 1): the last feed position handed out. Purging old events never resets it."""

    __tablename__ = "event_feed_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInteger, nullable=False)


# Teach the PostgreSQL dialect's reflection the type, so migration checks compare it instead of warning.
ischema_names["xid8"] = Xid8
