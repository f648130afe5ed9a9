import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin

REVENUE = Numeric(16, 2)


class CustomerMetrics(Base):
    """One row per customer with orders (a customer without a row is a ``prospect`` with no
    figures). Two kinds of columns:

    - kept current in each order's and refund's own transaction (``app/analytics/incremental.py``)
      and recomputed by every full refresh, always to the same values: ``order_count`` (orders
      not cancelled), ``gross_revenue`` (their totals), ``refunded_amount`` (refunds on them),
      ``net_revenue`` (gross - refunded), ``refund_count``, ``first_order_at``,
      ``last_order_at``; ``average_order_value`` is derived by the database.
    - computed by the full refresh only, as of its ``as_of`` date (``app/analytics/refresh.py``):
      recency, RFM, value tier, lifecycle stage, and the predictions of the fitted models.
    """

    __tablename__ = "customer_metrics"
    __table_args__ = (ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    gross_revenue: Mapped[Decimal] = mapped_column(
        REVENUE, nullable=False, server_default=text("0")
    )
    refunded_amount: Mapped[Decimal] = mapped_column(
        REVENUE, nullable=False, server_default=text("0")
    )
    net_revenue: Mapped[Decimal] = mapped_column(REVENUE, nullable=False, server_default=text("0"))
    refund_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    first_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    average_order_value: Mapped[Decimal | None] = mapped_column(
        REVENUE,
        Computed(
            "CASE WHEN order_count > 0 THEN round(net_revenue / order_count, 2) END",
            persisted=True,
        ),
    )
    # Moved on by every incremental update: a refresh overwrites the order figures of a row only
    # if it still has the revision the refresh read them with (a concurrent order is never lost).
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    # When an incremental update or a refresh last changed the order figures.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )

    # The refresh's figures, as of ``as_of`` (NULL until the first refresh).
    as_of: Mapped[date | None] = mapped_column(Date)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    rfm_recency: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_frequency: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_monetary: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_segment: Mapped[str | None] = mapped_column(String(20))
    value_tier: Mapped[str | None] = mapped_column(String(1))
    lifecycle_stage: Mapped[str] = mapped_column(
        String(12), nullable=False, server_default=text("'prospect'")
    )
    lifecycle_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    p_alive: Mapped[float | None] = mapped_column(Double)
    churn_risk: Mapped[float | None] = mapped_column(Double)
    expected_purchases_90d: Mapped[float | None] = mapped_column(Double)
    expected_purchases_365d: Mapped[float | None] = mapped_column(Double)
    expected_order_value: Mapped[Decimal | None] = mapped_column(REVENUE)
    clv_12m: Mapped[Decimal | None] = mapped_column(REVENUE)
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AnalyticsRefresh(IdMixin, Base):
    """One full recompute (scheduled or ``POST /v1/analytics/refresh``), with its progress. At most
    one is queued or running at a time (a unique partial index holds it)."""

    __tablename__ = "analytics_refreshes"
    __table_args__ = (
        Index(
            "uq_analytics_refreshes_active",
            text("(true)"),
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_analytics_refreshes_requested_at", "requested_at"),
    )

    status: Mapped[str] = mapped_column(String(10), nullable=False)
    as_of: Mapped[date] = mapped_column(Date, nullable=False)
    # Who asked: an API key's name, or "schedule".
    requested_by: Mapped[str] = mapped_column(String(200), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The step running now (or the last one), and how many of how many are done.
    step: Mapped[str | None] = mapped_column(String(40))
    steps_done: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default=text("0"))
    steps_total: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    # Per step: seconds taken and what it counted ({"metrics": {"seconds": 1.2, "rows": 10}}).
    figures: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    error: Mapped[str | None] = mapped_column(Text)


class AnalyticsModelFit(IdMixin, Base):
    """One fit of a predictive model (BG/NBD or Gamma-Gamma); the newest of each kind is the one
    predictions come from. Kept as history."""

    __tablename__ = "analytics_model_fits"
    __table_args__ = (Index("ix_analytics_model_fits_kind_fitted_at", "kind", "fitted_at"),)

    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    refresh_id: Mapped[uuid.UUID | None] = mapped_column()
    # {"r": ..., "alpha": ..., "a": ..., "b": ...} or {"p": ..., "q": ..., "gamma": ...}
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    sample_size: Mapped[int] = mapped_column(Integer, nullable=False)
    log_likelihood: Mapped[float] = mapped_column(Double, nullable=False)
    converged: Mapped[bool] = mapped_column(Boolean, nullable=False)
    time_unit_days: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    calibration_start: Mapped[date | None] = mapped_column(Date)
    calibration_end: Mapped[date] = mapped_column(Date, nullable=False)
    fitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    fit_seconds: Mapped[float] = mapped_column(Double, nullable=False)
    # Predicted against actual repeat purchases in a holdout window, when one was configured.
    holdout: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
