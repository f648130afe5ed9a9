import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.ids import new_id
from app.db.base import Base, IdMixin, TimestampMixin


class Segment(IdMixin, TimestampMixin, Base):
    """A named set of customers: ``dynamic`` (its ``rule`` decides, membership kept current) or
    ``static`` (members added and removed by hand). A reference table: no customer owns it."""

    __tablename__ = "segments"
    __table_args__ = (
        Index("uq_segments_name", "name", unique=True),
        Index("ix_segments_created_at_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    # The rule's normalized JSON (app/rules); NULL for a static segment.
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    # Moves on with every change of the rule; each membership records the one it entered under.
    rule_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SegmentMembership(Base):
    """One stay of a customer in a segment: from ``entered_at`` until ``exited_at`` (NULL while
    it lasts). Rows are never deleted while the segment lives, so the members at any past time
    are the stays that had begun and not yet ended (``?as_of=``). Belongs to its customer:
    ``customer_id`` leads the primary key (Citus, ARCHITECTURE.md)."""

    __tablename__ = "segment_memberships"
    __table_args__ = (
        ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["segment_id"], ["segments.id"], ondelete="CASCADE"),
        # At most one current stay per customer and segment (a refresh and an incremental
        # update racing each other insert one, not two).
        Index(
            "uq_segment_memberships_current",
            "segment_id",
            "customer_id",
            unique=True,
            postgresql_where=text("exited_at IS NULL"),
        ),
        Index("ix_segment_memberships_segment_entered", "segment_id", "entered_at", "id"),
        # The customer's timeline, by entry and by exit.
        Index("ix_segment_memberships_customer_entered", "customer_id", "entered_at", "id"),
        Index(
            "ix_segment_memberships_customer_exited",
            "customer_id",
            "exited_at",
            "id",
            postgresql_where=text("exited_at IS NOT NULL"),
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    segment_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    exited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rule_version: Mapped[int | None] = mapped_column(Integer)


class SegmentFollowState(Base):
    """One row (id 1): the last event position whose customers the segments have re-evaluated
    (``app/segments/follower.py``)."""

    __tablename__ = "segment_follow_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInteger, nullable=False)
