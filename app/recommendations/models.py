from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, Double, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class ItemStats(Base):
    """Per sku, over every order not cancelled: what the recommendations rank and describe items
    by (refreshed by the co-purchase job)."""

    __tablename__ = "item_stats"
    __table_args__ = (
        Index("ix_item_stats_category_average_unit_price", "category", "average_unit_price"),
        Index("ix_item_stats_order_count", "order_count"),
    )

    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    # The most recent name and category it was sold under.
    name: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(100))
    order_count: Mapped[int] = mapped_column(Integer, nullable=False)
    customer_count: Mapped[int] = mapped_column(Integer, nullable=False)
    average_unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ItemPair(Base):
    """Two skus bought in the same orders: ``orders_together`` of them; ``support`` its share of
    all orders, ``confidence`` P(other | sku), ``lift`` confidence / P(other). Both directions are
    stored."""

    __tablename__ = "item_pairs"

    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    other_sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    orders_together: Mapped[int] = mapped_column(Integer, nullable=False)
    support: Mapped[float] = mapped_column(Double, nullable=False)
    confidence: Mapped[float] = mapped_column(Double, nullable=False)
    lift: Mapped[float] = mapped_column(Double, nullable=False)
