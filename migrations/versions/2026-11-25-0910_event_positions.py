"""event positions: the feed pages by a position the event sequencer stamps after commit

Revision ID: 20261125_0002
Revises: 20261125_0001
Create Date: 2026-11-25 09:10:00+00:00

``events.position`` was an identity taken at insert, paged together with the writing transaction's
id (``tx_id``). Neither is commit order. From here on a row is written with ``position`` NULL and the
sequencer (``app/events/sequencer.py``) stamps committed rows with the next positions, counted in
``event_feed_state``. A statement-level trigger NOTIFYs ``kehu_events`` so the sequencer wakes at the
writer's commit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.events.models import Xid8

revision: str = "20261125_0002"
down_revision: str | None = "20261125_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Existing rows keep their old feed order, (tx_id, position), numbered 1..n; within one customer the
# slots are then handed out by `sequence`, so positions increase with it as the sequencer guarantees.
STAMP_EXISTING = """
WITH ordered AS (
    SELECT id, sequence,
           CASE WHEN customer_id IS NOT NULL AND sequence IS NOT NULL
                THEN customer_id::text ELSE id::text END AS grp,
           row_number() OVER (ORDER BY tx_id, position) AS slot
    FROM events
),
by_sequence AS (
    SELECT id, grp, row_number() OVER (PARTITION BY grp ORDER BY sequence, id) AS k FROM ordered
),
by_slot AS (
    SELECT grp, slot, row_number() OVER (PARTITION BY grp ORDER BY slot) AS k FROM ordered
)
UPDATE events AS e SET position = s.slot
FROM by_sequence AS q JOIN by_slot AS s USING (grp, k)
WHERE e.id = q.id
"""

NOTIFY_FUNCTION = """
CREATE FUNCTION kehu_events_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('kehu_events', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

NOTIFY_TRIGGER = """
CREATE TRIGGER tg_events_notify AFTER INSERT ON events
FOR EACH STATEMENT EXECUTE FUNCTION kehu_events_notify()
"""


def upgrade() -> None:
    op.execute("ALTER TABLE events ALTER COLUMN position DROP IDENTITY")
    op.alter_column("events", "position", existing_type=sa.BigInteger(), nullable=True)
    op.execute(STAMP_EXISTING)
    op.drop_index("ix_events_tx_id_position", table_name="events")
    op.drop_column("events", "tx_id")
    op.create_table(
        "event_feed_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_feed_state")),
    )
    op.execute(
        "INSERT INTO event_feed_state (id, last_position) "
        "SELECT 1, coalesce(max(position), 0) FROM events"
    )
    op.create_index(
        "uq_events_position",
        "events",
        ["position"],
        unique=True,
        postgresql_where=sa.text("position IS NOT NULL"),
    )
    op.create_index(
        "ix_events_unstamped",
        "events",
        ["occurred_at", "id"],
        unique=False,
        postgresql_where=sa.text("position IS NULL"),
    )
    op.execute(NOTIFY_FUNCTION)
    op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tg_events_notify ON events")
    op.execute("DROP FUNCTION IF EXISTS kehu_events_notify()")
    # Rows the sequencer has not reached yet get the next positions, oldest first.
    op.execute(
        """
        UPDATE events AS e SET position = s.last_position + u.n
        FROM event_feed_state AS s,
             (SELECT id, row_number() OVER (ORDER BY occurred_at, sequence, id) AS n
              FROM events WHERE position IS NULL) AS u
        WHERE e.id = u.id
        """
    )
    op.drop_index(
        "ix_events_unstamped",
        table_name="events",
        postgresql_where=sa.text("position IS NULL"),
    )
    op.drop_index(
        "uq_events_position",
        table_name="events",
        postgresql_where=sa.text("position IS NOT NULL"),
    )
    op.drop_table("event_feed_state")
    op.add_column(
        "events",
        sa.Column("tx_id", Xid8(), server_default=sa.text("pg_current_xact_id()"), nullable=False),
    )
    op.create_index("ix_events_tx_id_position", "events", ["tx_id", "position"], unique=False)
    op.alter_column("events", "position", existing_type=sa.BigInteger(), nullable=False)
    op.execute("ALTER TABLE events ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY")
    op.execute(
        "SELECT setval(pg_get_serial_sequence('events', 'position'), "
        "coalesce(max(position), 0) + 1, false) FROM events"
    )
