"""interactions cases feedback

Revision ID: 20261207_0002
Revises: 20261207_0001
Create Date: 2026-12-07 13:14:51.191349+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261207_0002"
down_revision: str | None = "20261207_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column(
            "time_zone", sa.String(length=64), server_default=sa.text("'UTC'"), nullable=False
        ),
        sa.Column(
            "weekdays",
            postgresql.ARRAY(sa.SmallInteger()),
            server_default=sa.text("'{1,2,3,4,5,6,7}'"),
            nullable=False,
        ),
        sa.Column("business_start_minute", sa.SmallInteger(), nullable=True),
        sa.Column("business_end_minute", sa.SmallInteger(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("priority", name=op.f("pk_sla_policies")),
    )
    # Default targets around the clock; operators set business hours per priority
    # (PUT /v1/sla-policies/{priority}).
    op.execute(
        "INSERT INTO sla_policies (priority, first_response_minutes, resolution_minutes) VALUES "
        "('urgent', 60, 480), ('high', 240, 1440), ('normal', 480, 4320), ('low', 1440, 10080)"
    )
    op.create_table(
        "cases",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "sla_consumed_seconds", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("sla_clock_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_seconds", sa.BigInteger(), nullable=True),
        sa.Column("resolution_seconds", sa.BigInteger(), nullable=True),
        sa.Column("first_response_breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("resolution", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
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
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_cases_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "id", name=op.f("pk_cases")),
    )
    op.create_index(
        "ix_cases_assignee",
        "cases",
        ["assignee"],
        unique=False,
        postgresql_where=sa.text("assignee IS NOT NULL"),
    )
    op.create_index(
        "ix_cases_customer_id_opened_at_id",
        "cases",
        ["customer_id", "opened_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_cases_first_response_due_at",
        "cases",
        ["first_response_due_at"],
        unique=False,
        postgresql_where=sa.text("first_response_breached_at IS NULL"),
    )
    op.create_index("ix_cases_id", "cases", ["id"], unique=False)
    op.create_index("ix_cases_opened_at_id", "cases", ["opened_at", "id"], unique=False)
    op.create_index(
        "ix_cases_resolution_due_at",
        "cases",
        ["resolution_due_at"],
        unique=False,
        postgresql_where=sa.text("resolution_breached_at IS NULL"),
    )
    op.create_index("ix_cases_status_priority", "cases", ["status", "priority"], unique=False)
    op.create_table(
        "case_transitions",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("actor_key_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id", "case_id"],
            ["cases.customer_id", "cases.id"],
            name=op.f("fk_case_transitions_customer_id_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "id", name=op.f("pk_case_transitions")),
    )
    op.create_index(
        "ix_case_transitions_case",
        "case_transitions",
        ["customer_id", "case_id", "at"],
        unique=False,
    )
    op.create_index(
        "ix_case_transitions_customer_id_at_id",
        "case_transitions",
        ["customer_id", "at", "id"],
        unique=False,
    )
    op.create_table(
        "interactions",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("agent", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=500), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
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
        sa.ForeignKeyConstraint(
            ["customer_id", "case_id"],
            ["cases.customer_id", "cases.id"],
            name=op.f("fk_interactions_customer_id_case_id_cases"),
            ondelete="SET NULL (case_id)",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_interactions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "id", name=op.f("pk_interactions")),
    )
    op.create_index(
        "ix_interactions_case",
        "interactions",
        ["customer_id", "case_id", "occurred_at"],
        unique=False,
        postgresql_where=sa.text("case_id IS NOT NULL"),
    )
    op.create_index(
        "ix_interactions_customer_id_occurred_at_id",
        "interactions",
        ["customer_id", "occurred_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_interactions_follow_ups_due_at_id",
        "interactions",
        ["due_at", "id"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index(
        "ix_interactions_follow_ups_unannounced",
        "interactions",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("status = 'planned' AND due_announced_at IS NULL"),
    )
    op.create_index("ix_interactions_id", "interactions", ["id"], unique=False)
    op.create_index(
        "ix_interactions_occurred_at_id", "interactions", ["occurred_at", "id"], unique=False
    )
    op.create_index(
        "uq_interactions_source_external_id",
        "interactions",
        ["source", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "surveys",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "case_id"],
            ["cases.customer_id", "cases.id"],
            name=op.f("fk_surveys_customer_id_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_surveys_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "id", name=op.f("pk_surveys")),
    )
    op.create_index("ix_surveys_case", "surveys", ["customer_id", "case_id"], unique=False)
    op.create_index("uq_surveys_token_hash", "surveys", ["token_hash"], unique=True)
    op.create_table(
        "feedback",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("agent", sa.String(length=200), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("interaction_id", sa.Uuid(), nullable=True),
        sa.Column("survey_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "case_id"],
            ["cases.customer_id", "cases.id"],
            name=op.f("fk_feedback_customer_id_case_id_cases"),
            ondelete="SET NULL (case_id)",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id", "interaction_id"],
            ["interactions.customer_id", "interactions.id"],
            name=op.f("fk_feedback_customer_id_interaction_id_interactions"),
            ondelete="SET NULL (interaction_id)",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_feedback_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "id", name=op.f("pk_feedback")),
    )
    op.create_index(
        "ix_feedback_customer_id_submitted_at_id",
        "feedback",
        ["customer_id", "submitted_at", "id"],
        unique=False,
    )
    op.create_index("ix_feedback_id", "feedback", ["id"], unique=False)
    op.create_index(
        "ix_feedback_kind_submitted_at", "feedback", ["kind", "submitted_at"], unique=False
    )
    op.create_index("ix_feedback_submitted_at_id", "feedback", ["submitted_at", "id"], unique=False)
    op.create_index(
        "uq_feedback_source_external_id",
        "feedback",
        ["source", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_feedback_source_external_id",
        table_name="feedback",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_index("ix_feedback_submitted_at_id", table_name="feedback")
    op.drop_index("ix_feedback_kind_submitted_at", table_name="feedback")
    op.drop_index("ix_feedback_id", table_name="feedback")
    op.drop_index("ix_feedback_customer_id_submitted_at_id", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("uq_surveys_token_hash", table_name="surveys")
    op.drop_index("ix_surveys_case", table_name="surveys")
    op.drop_table("surveys")
    op.drop_index(
        "uq_interactions_source_external_id",
        table_name="interactions",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_index("ix_interactions_occurred_at_id", table_name="interactions")
    op.drop_index("ix_interactions_id", table_name="interactions")
    op.drop_index(
        "ix_interactions_follow_ups_unannounced",
        table_name="interactions",
        postgresql_where=sa.text("status = 'planned' AND due_announced_at IS NULL"),
    )
    op.drop_index(
        "ix_interactions_follow_ups_due_at_id",
        table_name="interactions",
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.drop_index("ix_interactions_customer_id_occurred_at_id", table_name="interactions")
    op.drop_index(
        "ix_interactions_case",
        table_name="interactions",
        postgresql_where=sa.text("case_id IS NOT NULL"),
    )
    op.drop_table("interactions")
    op.drop_index("ix_case_transitions_customer_id_at_id", table_name="case_transitions")
    op.drop_index("ix_case_transitions_case", table_name="case_transitions")
    op.drop_table("case_transitions")
    op.drop_index("ix_cases_status_priority", table_name="cases")
    op.drop_index(
        "ix_cases_resolution_due_at",
        table_name="cases",
        postgresql_where=sa.text("resolution_breached_at IS NULL"),
    )
    op.drop_index("ix_cases_opened_at_id", table_name="cases")
    op.drop_index("ix_cases_id", table_name="cases")
    op.drop_index(
        "ix_cases_first_response_due_at",
        table_name="cases",
        postgresql_where=sa.text("first_response_breached_at IS NULL"),
    )
    op.drop_index("ix_cases_customer_id_opened_at_id", table_name="cases")
    op.drop_index(
        "ix_cases_assignee", table_name="cases", postgresql_where=sa.text("assignee IS NOT NULL")
    )
    op.drop_table("cases")
    op.drop_table("sla_policies")
