"""Orders on the customer timeline (app/timeline), dated by ``occurred_at``."""

from sqlalchemy import Text, select

from app.orders.models import Order
from app.timeline.sources import TimelineSource

_orders = Order.__table__

# The columns an entry carries, amounts as text: in the entry's JSON a number would be read back as
# a float. A plain subquery: PostgreSQL pulls it up, so the timeline still walks the orders' own
# (customer_id, occurred_at, id) index.
_ENTRIES = select(
    _orders.c.customer_id,
    _orders.c.id,
    _orders.c.occurred_at,
    _orders.c.status,
    _orders.c.channel,
    _orders.c.total.cast(Text).label("total"),
    _orders.c.refunded_amount.cast(Text).label("refunded"),
    _orders.c.currency,
    _orders.c.source,
    _orders.c.external_id,
).subquery("order_entries")

TIMELINE = TimelineSource(
    kind="order",
    scope="orders:read",
    table=_ENTRIES,
    at="occurred_at",
    fields=("status", "channel", "total", "refunded", "currency", "source", "external_id"),
    description="A purchase: its status, channel, total and refunded amount (decimal strings).",
)
