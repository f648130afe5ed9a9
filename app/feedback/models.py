import uuid
from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.ids import new_id
from app.db.base import Base


class Feedback(Base):
    """One survey answer: NPS (0–10), CSAT (1–5) or CES (1–7). Append-only."""

    __tablename__ = "feedback"
    __table_args__ = (
        ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["customer_id", "case_id"],
            ["cases.customer_id", "cases.id"],
            ondelete="SET NULL (case_id)",
        ),
        ForeignKeyConstraint(
            ["customer_id", "interaction_id"],
            ["interactions.customer_id", "interactions.id"],
            ondelete="SET NULL (interaction_id)",
        ),
        Index("ix_feedback_id", "id"),
        Index("ix_feedback_customer_id_submitted_at_id", "customer_id", "submitted_at", "id"),
        Index("ix_feedback_submitted_at_id", "submitted_at", "id"),
        Index("ix_feedback_kind_submitted_at", "kind", "submitted_at"),
        Index(
            "uq_feedback_source_external_id",
            "source",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    score: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(20))
    # The agent the answer is about: given, or taken from the linked case or interaction.
    agent: Mapped[str | None] = mapped_column(String(200))
    case_id: Mapped[uuid.UUID | None] = mapped_column()
    interaction_id: Mapped[uuid.UUID | None] = mapped_column()
    # The survey token it answered, if any.
    survey_id: Mapped[uuid.UUID | None] = mapped_column()
    source: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )


class Survey(Base):
    """A one-time survey invitation (a resolved case's CSAT survey). Only the token's SHA-256 is
    kept; the token itself travels once, in the ``case.resolved`` event."""

    __tablename__ = "surveys"
    __table_args__ = (
        ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["customer_id", "case_id"],
            ["cases.customer_id", "cases.id"],
            ondelete="CASCADE",
        ),
        Index("uq_surveys_token_hash", "token_hash", unique=True),
        Index("ix_surveys_case", "customer_id", "case_id"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    case_id: Mapped[uuid.UUID | None] = mapped_column()
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    feedback_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
