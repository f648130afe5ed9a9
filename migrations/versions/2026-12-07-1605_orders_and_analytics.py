"""orders and analytics: orders with items and refunds, customer metrics, refreshes, model fits,
co-purchase statistics; interactions.order_id becomes a foreign key

Revision ID: 20261207_0003
Revises: 20261207_0002
Create Date: 2026-12-07 16:05:49.539659+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261207_0003"
down_revision: str | None = "20261207_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_model_fits",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("refresh_id", sa.Uuid(), nullable=True),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("log_likelihood", sa.Double(), nullable=False),
        sa.Column("converged", sa.Boolean(), nullable=False),
        sa.Column("time_unit_days", sa.SmallInteger(), nullable=False),
        sa.Column("calibration_start", sa.Date(), nullable=True),
        sa.Column("calibration_end", sa.Date(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fit_seconds", sa.Double(), nullable=False),
        sa.Column("holdout", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_model_fits")),
    )
    op.create_index(
        "ix_analytics_model_fits_kind_fitted_at",
        "analytics_model_fits",
        ["kind", "fitted_at"],
        unique=False,
    )
    op.create_table(
        "analytics_refreshes",
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("step", sa.String(length=40), nullable=True),
        sa.Column("steps_done", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("steps_total", sa.SmallInteger(), nullable=False),
        sa.Column(
            "figures",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_refreshes")),
    )
    op.create_index(
        "ix_analytics_refreshes_requested_at", "analytics_refreshes", ["requested_at"], unique=False
    )
    op.create_index(
        "uq_analytics_refreshes_active",
        "analytics_refreshes",
        [sa.literal_column("(true)")],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_table(
        "item_pairs",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("other_sku", sa.String(length=100), nullable=False),
        sa.Column("orders_together", sa.Integer(), nullable=False),
        sa.Column("support", sa.Double(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("lift", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("sku", "other_sku", name=op.f("pk_item_pairs")),
    )
    op.create_table(
        "item_stats",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("customer_count", sa.Integer(), nullable=False),
        sa.Column("average_unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_item_stats")),
    )
    op.create_index(
        "ix_item_stats_category_average_unit_price",
        "item_stats",
        ["category", "average_unit_price"],
        unique=False,
    )
    op.create_index("ix_item_stats_order_count", "item_stats", ["order_count"], unique=False)
    op.create_table(
        "customer_metrics",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("order_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "gross_revenue",
            sa.Numeric(precision=16, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "refunded_amount",
            sa.Numeric(precision=16, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "net_revenue",
            sa.Numeric(precision=16, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("refund_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "average_order_value",
            sa.Numeric(precision=16, scale=2),
            sa.Computed(
                "CASE WHEN order_count > 0 THEN round(net_revenue / order_count, 2) END",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("revision", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("rfm_recency", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_frequency", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_monetary", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_segment", sa.String(length=20), nullable=True),
        sa.Column("value_tier", sa.String(length=1), nullable=True),
        sa.Column(
            "lifecycle_stage",
            sa.String(length=12),
            server_default=sa.text("'prospect'"),
            nullable=False,
        ),
        sa.Column("lifecycle_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("p_alive", sa.Double(), nullable=True),
        sa.Column("churn_risk", sa.Double(), nullable=True),
        sa.Column("expected_purchases_90d", sa.Double(), nullable=True),
        sa.Column("expected_purchases_365d", sa.Double(), nullable=True),
        sa.Column("expected_order_value", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("clv_12m", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_metrics_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_metrics")),
    )
    op.create_table(
        "orders",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column(
            "discount",
            sa.Numeric(precision=14, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "shipping",
            sa.Numeric(precision=14, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "tax", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column(
            "refunded_amount",
            sa.Numeric(precision=14, scale=2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= total",
            name=op.f("ck_orders_refund_within_total"),
        ),
        sa.CheckConstraint("total >= 0", name=op.f("ck_orders_total_not_negative")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_orders_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "id", name=op.f("pk_orders")),
    )
    op.create_index(
        "ix_orders_customer_id_occurred_at_id",
        "orders",
        ["customer_id", "occurred_at", "id"],
        unique=False,
    )
    op.create_index("ix_orders_id", "orders", ["id"], unique=False)
    op.create_index("ix_orders_occurred_at_id", "orders", ["occurred_at", "id"], unique=False)
    op.create_index(
        "uq_orders_source_external_id",
        "orders",
        ["source", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "order_items",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.SmallInteger(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("refunded_quantity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_items_quantity_positive")),
        sa.CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= quantity",
            name=op.f("ck_order_items_refund_within_quantity"),
        ),
        sa.CheckConstraint("unit_price >= 0", name=op.f("ck_order_items_unit_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["customer_id", "order_id"],
            ["orders.customer_id", "orders.id"],
            name=op.f("fk_order_items_customer_id_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "order_id", "line", name=op.f("pk_order_items")),
    )
    op.create_table(
        "order_refunds",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_order_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id", "order_id"],
            ["orders.customer_id", "orders.id"],
            name=op.f("fk_order_refunds_customer_id_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "id", name=op.f("pk_order_refunds")),
    )
    op.create_index(
        "ix_order_refunds_customer_id_order_id",
        "order_refunds",
        ["customer_id", "order_id"],
        unique=False,
    )
    op.create_index("ix_order_refunds_id", "order_refunds", ["id"], unique=False)
    op.create_index(
        "uq_order_refunds_order_id_external_id",
        "order_refunds",
        ["order_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    # Interactions stored an order_id before orders existed: no order can match it yet.
    op.execute("UPDATE interactions SET order_id = NULL WHERE order_id IS NOT NULL")
    op.create_foreign_key(
        op.f("fk_interactions_customer_id_order_id_orders"),
        "interactions",
        "orders",
        ["customer_id", "order_id"],
        ["customer_id", "id"],
        ondelete="SET NULL (order_id)",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_interactions_customer_id_order_id_orders"), "interactions", type_="foreignkey"
    )
    op.drop_index(
        "uq_order_refunds_order_id_external_id",
        table_name="order_refunds",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_index("ix_order_refunds_id", table_name="order_refunds")
    op.drop_index("ix_order_refunds_customer_id_order_id", table_name="order_refunds")
    op.drop_table("order_refunds")
    op.drop_table("order_items")
    op.drop_index(
        "uq_orders_source_external_id",
        table_name="orders",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_index("ix_orders_occurred_at_id", table_name="orders")
    op.drop_index("ix_orders_id", table_name="orders")
    op.drop_index("ix_orders_customer_id_occurred_at_id", table_name="orders")
    op.drop_table("orders")
    op.drop_table("customer_metrics")
    op.drop_index("ix_item_stats_order_count", table_name="item_stats")
    op.drop_index("ix_item_stats_category_average_unit_price", table_name="item_stats")
    op.drop_table("item_stats")
    op.drop_table("item_pairs")
    op.drop_index(
        "uq_analytics_refreshes_active",
        table_name="analytics_refreshes",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_index("ix_analytics_refreshes_requested_at", table_name="analytics_refreshes")
    op.drop_table("analytics_refreshes")
    op.drop_index("ix_analytics_model_fits_kind_fitted_at", table_name="analytics_model_fits")
    op.drop_table("analytics_model_fits")
