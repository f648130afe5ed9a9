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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.ids import new_id
from app.db.base import Base, TimestampMixin


class Case(TimestampMixin, Base):
    """A complaint or service request of one customer, moved through an explicit state machine.

    The SLA clock runs in business time (the priority's policy) and stops while the case waits for
    the customer: ``sla_consumed_seconds`` is the business time used up to ``sla_clock_started_at``
    (NULL while paused or stopped). A deadline not yet met is NULL while the clock is paused; a met
    one stays as it was (the breach job and the reports compare it with when it was met). The
    rules are in app/cases/sla.py and docs/cases.md.
    """

    __tablename__ = "cases"
    __table_args__ = (
        ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        Index("ix_cases_id", "id"),
        Index("ix_cases_customer_id_opened_at_id", "customer_id", "opened_at", "id"),
        Index("ix_cases_opened_at_id", "opened_at", "id"),
        Index("ix_cases_status_priority", "status", "priority"),
        Index("ix_cases_assignee", "assignee", postgresql_where=text("assignee IS NOT NULL")),
        # What the breach job scans: unbreached deadlines, soonest first.
        Index(
            "ix_cases_first_response_due_at",
            "first_response_due_at",
            postgresql_where=text("first_response_breached_at IS NULL"),
        ),
        Index(
            "ix_cases_resolution_due_at",
            "resolution_due_at",
            postgresql_where=text("resolution_breached_at IS NULL"),
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    category: Mapped[str] = mapped_column(String(40), nullable=False)
    priority: Mapped[str] = mapped_column(String(10), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    subject: Mapped[str] = mapped_column(String(500), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # SLA clock.
    sla_consumed_seconds: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text("0")
    )
    sla_clock_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Business seconds from opening to the first response / the (last) resolution, pauses excluded.
    first_response_seconds: Mapped[int | None] = mapped_column(BigInteger)
    resolution_seconds: Mapped[int | None] = mapped_column(BigInteger)
    first_response_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reopen_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    # {"outcome", "note", "compensation": {"points", "reason"} | null}; compensation is recorded
    # (and posted to the ledger once loyalty exists).
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))


class CaseTransition(Base):
    """One status change of a case: the history, append-only."""

    __tablename__ = "case_transitions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["customer_id", "case_id"], ["cases.customer_id", "cases.id"], ondelete="CASCADE"
        ),
        Index("ix_case_transitions_case", "customer_id", "case_id", "at"),
        Index("ix_case_transitions_customer_id_at_id", "customer_id", "at", "id"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(2000))
    # The API key behind the change (its id and name at the time).
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column()
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SlaPolicy(Base):
    """The SLA targets of one priority (a reference table: four rows, one per priority).

    Without business hours (``business_start``/``business_end`` NULL) the clock runs around the
    clock on ``weekdays``; with them, only inside those hours on those days in ``time_zone``.
    """

    __tablename__ = "sla_policies"

    priority: Mapped[str] = mapped_column(String(10), primary_key=True)
    first_response_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    resolution_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, server_default=text("'UTC'"))
    # ISO weekdays (1 = Monday … 7 = Sunday) the clock runs on.
    weekdays: Mapped[list[int]] = mapped_column(
        ARRAY(SmallInteger), nullable=False, server_default=text("'{1,2,3,4,5,6,7}'")
    )
    # Minutes after local midnight; both NULL: all day.
    business_start_minute: Mapped[int | None] = mapped_column(SmallInteger)
    business_end_minute: Mapped[int | None] = mapped_column(SmallInteger)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
