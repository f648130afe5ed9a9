"""customer name search: names alone, for `q` searches by keys without pii:read

Revision ID: 20261125_0003
Revises: 20261125_0002
Create Date: 2026-11-25 09:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261125_0003"
down_revision: str | None = "20261125_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of NAME_SEARCH_TEXT_SQL (app/customers/models.py) as of this revision.
NAME_SEARCH_TEXT_SQL = (
    "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || "
    "coalesce(last_name, '') || coalesce(first_name, ''))"
)


def upgrade() -> None:
    # A stored generated column rewrites the table once (an exclusive lock for that time).
    op.add_column(
        "customers",
        sa.Column(
            "name_search_text",
            sa.Text(),
            sa.Computed(NAME_SEARCH_TEXT_SQL, persisted=True),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_customers_name_search_text_trgm",
        "customers",
        ["name_search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name_search_text": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index(
        "ix_customers_name_search_text_trgm",
        table_name="customers",
        postgresql_using="gin",
        postgresql_ops={"name_search_text": "gin_trgm_ops"},
    )
    op.drop_column("customers", "name_search_text")
