import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.ids import new_id
from app.db.base import Base, TimestampMixin

# Money: up to 10^12 - 0.01 in the currency's main unit, two decimals (KEHU_CURRENCY).
MONEY = Numeric(14, 2)


class Order(TimestampMixin, Base):
    """A purchase from any channel, with its lines (``order_items``) and refunds
    (``order_refunds``). Belongs to its customer: ``customer_id`` leads the primary key and the
    foreign keys (Citus, ARCHITECTURE.md).

    ``total = subtotal - discount + shipping + tax``, ``subtotal`` the sum of the lines (0 for an
    order sent without lines); ``refunded_amount`` never exceeds ``total`` (a check constraint
    holds it even against a bug)."""

    __tablename__ = "orders"
    __table_args__ = (
        ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= total", name="refund_within_total"
        ),
        Index("ix_orders_id", "id"),
        # (source, external_id) is the partner's identity of an order: the same pair is the same
        # order, whoever sends it again.
        Index(
            "uq_orders_source_external_id",
            "source",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index("ix_orders_customer_id_occurred_at_id", "customer_id", "occurred_at", "id"),
        Index("ix_orders_occurred_at_id", "occurred_at", "id"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    subtotal: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    discount: Mapped[Decimal] = mapped_column(MONEY, nullable=False, server_default=text("0"))
    shipping: Mapped[Decimal] = mapped_column(MONEY, nullable=False, server_default=text("0"))
    tax: Mapped[Decimal] = mapped_column(MONEY, nullable=False, server_default=text("0"))
    total: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    refunded_amount: Mapped[Decimal] = mapped_column(
        MONEY, nullable=False, server_default=text("0")
    )
    # When the purchase happened (may be long past: history imports).
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    source: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))


class OrderItem(Base):
    """One line of an order: ``quantity`` × ``unit_price`` of a sku; ``refunded_quantity`` of it
    refunded by item."""

    __tablename__ = "order_items"
    __table_args__ = (
        ForeignKeyConstraint(
            ["customer_id", "order_id"], ["orders.customer_id", "orders.id"], ondelete="CASCADE"
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= quantity",
            name="refund_within_quantity",
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # 1-based position in the order as sent.
    line: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), nullable=False)
    name: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    refunded_quantity: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )


class OrderRefund(Base):
    """Money given back on an order: an amount, or lines (``items``: ``[{"line", "quantity"}]``)
    whose value is the amount. The order's ``refunded_amount`` is the sum of its refunds."""

    __tablename__ = "order_refunds"
    __table_args__ = (
        ForeignKeyConstraint(
            ["customer_id", "order_id"], ["orders.customer_id", "orders.id"], ondelete="CASCADE"
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_order_refunds_id", "id"),
        Index("ix_order_refunds_customer_id_order_id", "customer_id", "order_id"),
        # A partner's refund id, idempotent per order.
        Index(
            "uq_order_refunds_order_id_external_id",
            "order_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(String(500))
    external_id: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
