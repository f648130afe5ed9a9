"""The order figures of ``customer_metrics`` kept current in each order's and refund's own
transaction (the ``CustomerMetrics`` docstring).

Each function returns one data-modifying SQL statement to be run as a CTE of a larger statement (the
orders repository composes them into the single create, the batch and the refund), so the one
definition of an increment serves all three. The full refresh (``app/analytics/refresh.py``)
recomputes the same columns from the orders, to the same values:

- ``order_count``: orders not cancelled; ``gross_revenue``: the sum of their totals;
- ``refunded_amount``: the sum of the refunds of those orders; ``refund_count``: their number;
- ``net_revenue``: gross - refunded;
- ``first_order_at`` / ``last_order_at``: the earliest / latest ``occurred_at`` of those orders.

Every increment moves ``revision`` on by one and sets ``updated_at``, so a refresh that read a row
before it never overwrites it (``CustomerMetrics.revision``). Rows are upserted one per customer in
customer order: concurrent writers take the row locks in the same order and never deadlock.
"""


def orders_upsert(source: str, now: str) -> str:
    """Add the orders of the relation ``source`` (columns ``customer_id``, ``status``, ``total``,
    ``occurred_at``; cancelled ones are skipped) to their customers' figures. ``now`` is the SQL
    of the time written to ``updated_at`` (a parameter). Returns ``customer_id`` per row written."""
    return f"""INSERT INTO customer_metrics AS m (
        customer_id, order_count, gross_revenue, net_revenue, first_order_at, last_order_at,
        revision, updated_at
    )
    SELECT customer_id, count(*), sum(total), sum(total), min(occurred_at), max(occurred_at),
           1, {now}
    FROM {source}
    WHERE status <> 'cancelled'
    GROUP BY customer_id
    ORDER BY customer_id
    ON CONFLICT (customer_id) DO UPDATE SET
        order_count = m.order_count + excluded.order_count,
        gross_revenue = m.gross_revenue + excluded.gross_revenue,
        net_revenue = m.net_revenue + excluded.net_revenue,
        first_order_at = least(m.first_order_at, excluded.first_order_at),
        last_order_at = greatest(m.last_order_at, excluded.last_order_at),
        revision = m.revision + 1,
        updated_at = excluded.updated_at
    RETURNING customer_id"""


def refunds_upsert(source: str, now: str) -> str:
    """Add the refunds of the relation ``source`` (columns ``customer_id``, ``amount``; refunds of
    orders that are not cancelled: a cancelled order cannot be refunded) to their customers'
    figures. ``now`` as for ``orders_upsert``. Returns ``customer_id`` per row written."""
    return f"""INSERT INTO customer_metrics AS m (
        customer_id, refunded_amount, net_revenue, refund_count, revision, updated_at
    )
    SELECT customer_id, sum(amount), -sum(amount), count(*), 1, {now}
    FROM {source}
    GROUP BY customer_id
    ORDER BY customer_id
    ON CONFLICT (customer_id) DO UPDATE SET
        refunded_amount = m.refunded_amount + excluded.refunded_amount,
        net_revenue = m.net_revenue + excluded.net_revenue,
        refund_count = m.refund_count + excluded.refund_count,
        revision = m.revision + 1,
        updated_at = excluded.updated_at
    RETURNING customer_id"""
