"""server secrets: the cursor signing key, made from PostgreSQL's strong random generator

Revision ID: 20261125_0001
Revises: 20261122_0001
Create Date: 2026-11-25 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261125_0001"
down_revision: str | None = "20261122_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    # gen_random_uuid() draws from pg_strong_random(); two of them give 244 random bits, hashed to
    # a 256-bit key. Made here so no process ever has to race to create it.
    op.execute(
        "INSERT INTO server_secrets (name, value) VALUES ('cursor_signing_key', "
        "encode(sha256((gen_random_uuid()::text || gen_random_uuid()::text)::bytea), 'hex'))"
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
