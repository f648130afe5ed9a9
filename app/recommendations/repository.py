"""Every SQL statement of recommendations: the co-purchase statistics (``item_stats``,
``item_pairs``) recomputed set-based by the refresh step, and a customer's candidates read in one
statement.

The refresh works in temporary tables of its own transaction (dropped at its end), over the
orders that are not cancelled and occurred before the cutoff (plans and times over the bench's
5,000,000 orders in docs/recommendations.md):

1. ``rec_items``: per sku, from a (parallel) hash join of ``orders`` and ``order_items``
   aggregated by sku: quantity, amount, the orders counted (through their line 1), when a line
   last carried a name or category, and a small integer id for the steps below.
2. ``rec_baskets``: one row per (order, item) — an order listing a sku on two lines buys it once —
   from a second pass of the same join. Only keys and by-value aggregates: per-group numeric sums
   made this aggregation five times bigger in memory (it spilled), so amounts are summed per sku
   in step 1 instead, where there are few groups.
3. ``rec_counts``: per item its distinct orders and customers, grouped by item and customer first
   so both come from one aggregation.
4. ``rec_names``: the name and category of each sku's latest line that had one, by joining the
   baskets at that instant back to their few lines (primary-key lookups).
5. ``rec_pairs``: each unordered pair once (``item < other_item``) with its orders together, from
   a self-join of the baskets on the order, kept from ``min_pair_orders`` on.

Then the old statistics are deleted and the new ones inserted in the same transaction, so a reader
sees either set, never a mix; ``item_pairs`` gets both directions of each pair, at most
``top_partners`` per sku.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from app.db import Connection

# Working memory of each hash join and aggregation of the refresh (hashes may take twice this,
# hash_mem_multiplier): the baskets of 5,000,000 orders take about 1.6 GB to hash at once; beyond
# this they spill to disk in batches, which PostgreSQL does well.
WORK_MEM = "512MB"

_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
_WORK_MEM = f"SET LOCAL work_mem = '{WORK_MEM}'"
# The statements run once per refresh: compiling them costs more than it could save.
_NO_JIT = "SET LOCAL jit = off"

# CREATE TABLE AS cannot take bound parameters (it is not a preparable statement), so the cutoff
# is written into the text: an ISO timestamp made from a date (``_timestamp``), never client text.
_ORDER_LINES = """
FROM orders AS o
JOIN order_items AS i ON i.customer_id = o.customer_id AND i.order_id = o.id
WHERE o.status <> 'cancelled' AND o.occurred_at < CAST('{cutoff}' AS timestamptz)
"""

_ITEMS = (
    """
CREATE TEMPORARY TABLE rec_items ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY i.sku)::int AS item,
       i.sku,
       sum(i.quantity) AS quantity,
       sum(i.quantity * i.unit_price) AS amount,
       -- Every order with lines has a line 1 (positions are 1-based): it counts the orders.
       count(*) FILTER (WHERE i.line = 1) AS first_lines,
       max(o.occurred_at) FILTER (WHERE i.name IS NOT NULL) AS name_at,
       max(o.occurred_at) FILTER (WHERE i.category IS NOT NULL) AS category_at
"""
    + _ORDER_LINES
    + "GROUP BY i.sku"
)
_ITEMS_KEY = "ALTER TABLE rec_items ADD PRIMARY KEY (sku)"
_ANALYZE_ITEMS = "ANALYZE rec_items"
_TOTALS = "SELECT count(*) AS skus, coalesce(sum(first_lines), 0)::bigint AS orders FROM rec_items"

_BASKETS = (
    """
CREATE TEMPORARY TABLE rec_baskets ON COMMIT DROP AS
SELECT i.customer_id, i.order_id, r.item, max(o.occurred_at) AS occurred_at
"""
    + _ORDER_LINES.replace("WHERE", "JOIN rec_items AS r ON r.sku = i.sku\nWHERE")
    + "GROUP BY i.customer_id, i.order_id, r.item"
)
_ANALYZE_BASKETS = "ANALYZE rec_baskets"

_COUNTS = """
CREATE TEMPORARY TABLE rec_counts ON COMMIT DROP AS
SELECT item, sum(orders)::int AS order_count, count(*)::int AS customer_count
FROM (SELECT item, customer_id, count(*) AS orders FROM rec_baskets GROUP BY item, customer_id)
     AS per_customer
GROUP BY item
"""
_COUNTS_KEY = "ALTER TABLE rec_counts ADD PRIMARY KEY (item)"
_ANALYZE_COUNTS = "ANALYZE rec_counts"

# Ties at the latest instant (two lines sold at the same moment under different names) take the
# greatest name, so a refresh is deterministic.
_NAMES = """
CREATE TEMPORARY TABLE rec_names ON COMMIT DROP AS
SELECT r.item,
       max(i.name) FILTER (WHERE b.occurred_at = r.name_at) AS name,
       max(i.category) FILTER (WHERE b.occurred_at = r.category_at) AS category
FROM rec_baskets AS b
JOIN rec_items AS r ON r.item = b.item
JOIN order_items AS i
  ON i.customer_id = b.customer_id AND i.order_id = b.order_id AND i.sku = r.sku
WHERE b.occurred_at = r.name_at OR b.occurred_at = r.category_at
GROUP BY r.item
"""

_PAIRS = """
CREATE TEMPORARY TABLE rec_pairs ON COMMIT DROP AS
SELECT a.item, b.item AS other_item, count(*)::int AS orders_together
FROM rec_baskets AS a
JOIN rec_baskets AS b
  ON b.customer_id = a.customer_id AND b.order_id = a.order_id AND b.item > a.item
GROUP BY a.item, b.item
HAVING count(*) >= {min_pair_orders}
"""
_ANALYZE_PAIRS = "ANALYZE rec_pairs"

_DELETE_PAIRS = "DELETE FROM item_pairs"
_DELETE_STATS = "DELETE FROM item_stats"

_INSERT_STATS = text(
    """
INSERT INTO item_stats
    (sku, name, category, order_count, customer_count, average_unit_price, refreshed_at)
SELECT r.sku, n.name, n.category, c.order_count, c.customer_count,
       round(r.amount / r.quantity, 2), :refreshed_at
FROM rec_items AS r
JOIN rec_counts AS c ON c.item = r.item
LEFT JOIN rec_names AS n ON n.item = r.item
"""
)

# lift = confidence / P(other) = together * N / (orders with sku * orders with other): written
# symmetrically, so a pair's lift is the same number in both directions.
_INSERT_PAIRS = text(
    """
INSERT INTO item_pairs (sku, other_sku, orders_together, support, confidence, lift)
SELECT a.sku, b.sku, ranked.orders_together, ranked.support, ranked.confidence, ranked.lift
FROM (
    SELECT measured.*,
           row_number() OVER (
               PARTITION BY item ORDER BY lift DESC, confidence DESC, other_sku COLLATE "C"
           ) AS rank
    FROM (
        SELECT d.item, d.other_item, o.sku AS other_sku, d.orders_together,
               d.orders_together / CAST(:orders AS float8) AS support,
               d.orders_together / ca.order_count::float8 AS confidence,
               d.orders_together * CAST(:orders AS float8)
                   / (ca.order_count::float8 * cb.order_count) AS lift
        FROM (
            SELECT item, other_item, orders_together FROM rec_pairs
            UNION ALL
            SELECT other_item, item, orders_together FROM rec_pairs
        ) AS d
        JOIN rec_counts AS ca ON ca.item = d.item
        JOIN rec_counts AS cb ON cb.item = d.other_item
        JOIN rec_items AS o ON o.item = d.other_item
    ) AS measured
) AS ranked
JOIN rec_items AS a ON a.item = ranked.item
JOIN rec_items AS b ON b.item = ranked.other_item
WHERE ranked.rank <= :top
"""
)


@dataclass(frozen=True, slots=True)
class StatisticsFigures:
    skus: int
    pairs: int
    orders: int


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the cutoff must be an aware datetime")
    return moment.isoformat()


async def replace_statistics(
    conn: Connection,
    *,
    cutoff: datetime,
    min_pair_orders: int,
    top_partners: int,
    refreshed_at: datetime,
) -> StatisticsFigures:
    """Recompute the item statistics and co-purchase pairs over the orders before ``cutoff`` and
    replace the stored ones, in ``conn``'s transaction, which must not have run a statement yet:
    every step reads one snapshot (REPEATABLE READ), so an order committed meanwhile is in all
    of them or in none."""
    lines = {"cutoff": _timestamp(cutoff)}
    for statement in (
        _SNAPSHOT,
        _WORK_MEM,
        _NO_JIT,
        _ITEMS.format(**lines),
        _ITEMS_KEY,
        _ANALYZE_ITEMS,
        _BASKETS.format(**lines),
        _ANALYZE_BASKETS,
        _COUNTS,
        _COUNTS_KEY,
        _ANALYZE_COUNTS,
        _NAMES,
        _PAIRS.format(min_pair_orders=int(min_pair_orders)),
        _ANALYZE_PAIRS,
    ):
        await conn.execute(text(statement))
    totals = (await conn.execute(text(_TOTALS))).one()
    await conn.execute(text(_DELETE_PAIRS))
    await conn.execute(text(_DELETE_STATS))
    await conn.execute(_INSERT_STATS, {"refreshed_at": refreshed_at})
    inserted = await conn.execute(
        _INSERT_PAIRS, {"orders": float(max(int(totals.orders), 1)), "top": top_partners}
    )
    return StatisticsFigures(
        skus=int(totals.skus), pairs=int(inserted.rowcount), orders=int(totals.orders)
    )


# ------------------------------------------------------------------------------ a customer's items

# The candidates of every requested customer in one statement (REST asks for one customer,
# GraphQL's DataLoader for all the customers of a request): up to :lim cross-sells, 2 x :lim
# upsells (the service drops those already shown as cross-sells: at most :lim) and, for a
# customer with neither (of the kinds asked for), :lim best sellers, each ranked in its kind.
# Only skus the customer never bought in an order that is not cancelled.
#
# Index use: the customer's orders and lines by their primary keys; each bought sku's partners by
# item_pairs' primary key (OFFSET 0 keeps that lookup per sku: flattened, the planner hashed the
# whole table); upsells by (category, average_unit_price); best sellers backwards on order_count,
# stopping at :lim. What they bought is an array per customer: a hash anti-join of the
# materialised CTE was planned as a nested loop over it for every candidate row.
_CANDIDATES = text(
    """
WITH requested AS (
    SELECT c.id AS customer_id
    FROM customers AS c
    WHERE c.id = ANY(:customer_ids) AND c.deleted_at IS NULL
),
bought AS MATERIALIZED (
    SELECT i.customer_id, i.sku, i.category, max(i.unit_price) AS top_price
    FROM requested AS r
    JOIN orders AS o ON o.customer_id = r.customer_id AND o.status <> 'cancelled'
    JOIN order_items AS i ON i.customer_id = o.customer_id AND i.order_id = o.id
    GROUP BY i.customer_id, i.sku, i.category
),
owned AS MATERIALIZED (
    SELECT r.customer_id,
           coalesce(array_agg(DISTINCT b.sku) FILTER (WHERE b.sku IS NOT NULL), '{}') AS skus
    FROM requested AS r
    LEFT JOIN bought AS b ON b.customer_id = r.customer_id
    GROUP BY r.customer_id
),
cross_sell AS (
    SELECT DISTINCT ON (w.customer_id, p.other_sku)
           w.customer_id, p.other_sku AS sku, p.sku AS because_of, p.confidence, p.lift,
           p.orders_together
    FROM owned AS w
    CROSS JOIN LATERAL unnest(w.skus) AS b(sku)
    CROSS JOIN LATERAL (
        SELECT p.sku, p.other_sku, p.confidence, p.lift, p.orders_together
        FROM item_pairs AS p
        WHERE p.sku = b.sku
        OFFSET 0
    ) AS p
    WHERE :cross_sell AND NOT p.other_sku = ANY(w.skus)
    ORDER BY w.customer_id, p.other_sku, p.lift DESC, p.confidence DESC, p.sku COLLATE "C"
),
cross_ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY customer_id ORDER BY lift DESC, confidence DESC, sku COLLATE "C"
    ) AS rank
    FROM cross_sell
),
paid AS (
    SELECT customer_id, category, max(top_price) AS top_price
    FROM bought
    WHERE :upsell AND category IS NOT NULL
    GROUP BY customer_id, category
),
upsell AS (
    SELECT p.customer_id, u.sku, p.category, p.top_price, u.order_count
    FROM paid AS p
    JOIN owned AS w ON w.customer_id = p.customer_id
    CROSS JOIN LATERAL (
        SELECT s.sku, s.order_count
        FROM item_stats AS s
        WHERE s.category = p.category AND s.average_unit_price > p.top_price
          AND NOT s.sku = ANY(w.skus)
        ORDER BY s.order_count DESC, s.sku COLLATE "C"
        LIMIT 2 * :lim
    ) AS u
),
upsell_ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY customer_id ORDER BY order_count DESC, sku COLLATE "C"
    ) AS rank
    FROM upsell
),
popular AS (
    SELECT w.customer_id, s.sku, s.order_count,
           row_number() OVER (
               PARTITION BY w.customer_id ORDER BY s.order_count DESC, s.sku COLLATE "C"
           ) AS rank
    FROM owned AS w
    CROSS JOIN LATERAL (
        SELECT s.sku, s.order_count
        FROM item_stats AS s
        WHERE NOT s.sku = ANY(w.skus)
        ORDER BY s.order_count DESC, s.sku COLLATE "C"
        LIMIT :lim
    ) AS s
    WHERE NOT EXISTS (SELECT 1 FROM cross_sell AS c WHERE c.customer_id = w.customer_id)
      AND NOT EXISTS (SELECT 1 FROM upsell AS u WHERE u.customer_id = w.customer_id)
),
candidates AS (
    SELECT customer_id, 'cross_sell' AS kind, rank, sku, because_of, confidence, lift,
           orders_together, NULL AS paid_category, NULL::numeric AS top_price
    FROM cross_ranked WHERE rank <= :lim
    UNION ALL
    SELECT customer_id, 'upsell', rank, sku, NULL, NULL, NULL, NULL, category, top_price
    FROM upsell_ranked WHERE rank <= 2 * :lim
    UNION ALL
    SELECT customer_id, 'popular', rank, sku, NULL, NULL, NULL, NULL, NULL, NULL
    FROM popular
)
SELECT r.customer_id, k.kind, k.rank, k.sku, s.name, s.category, s.order_count,
       k.because_of, k.confidence, k.lift, k.orders_together, k.paid_category, k.top_price,
       (SELECT max(order_count) FROM item_stats) AS best_order_count,
       (SELECT refreshed_at FROM item_stats LIMIT 1) AS refreshed_at
FROM requested AS r
LEFT JOIN candidates AS k ON k.customer_id = r.customer_id
LEFT JOIN item_stats AS s ON s.sku = k.sku
ORDER BY r.customer_id, k.kind, k.rank
"""
).bindparams(bindparam("customer_ids", type_=ARRAY(UUID(as_uuid=True))))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate item of a customer, as ranked within its kind."""

    kind: str
    sku: str
    name: str | None
    category: str | None
    order_count: int
    best_order_count: int
    because_of: str | None
    confidence: float | None
    lift: float | None
    orders_together: int | None
    paid_category: str | None
    top_price: Decimal | None


@dataclass(frozen=True, slots=True)
class CustomerCandidates:
    refreshed_at: datetime | None
    # By kind, best first.
    by_kind: dict[str, list[Candidate]]


async def candidates(
    conn: Connection,
    customer_ids: list[uuid.UUID],
    *,
    cross_sell: bool,
    upsell: bool,
    limit: int,
) -> dict[uuid.UUID, CustomerCandidates]:
    """The candidates of each of ``customer_ids`` that exists (not deleted), by customer."""
    rows = await conn.execute(
        _CANDIDATES,
        {"customer_ids": customer_ids, "cross_sell": cross_sell, "upsell": upsell, "lim": limit},
    )
    found: dict[uuid.UUID, CustomerCandidates] = {}
    for row in rows:
        entry = found.get(row.customer_id)
        if entry is None:
            entry = found[row.customer_id] = CustomerCandidates(row.refreshed_at, {})
        if row.kind is None:
            continue
        entry.by_kind.setdefault(row.kind, []).append(_candidate(row._mapping))
    return found


def _candidate(row: Any) -> Candidate:
    return Candidate(
        kind=row["kind"],
        sku=row["sku"],
        name=row["name"],
        category=row["category"],
        order_count=row["order_count"],
        best_order_count=row["best_order_count"],
        because_of=row["because_of"],
        confidence=row["confidence"],
        lift=row["lift"],
        orders_together=row["orders_together"],
        paid_category=row["paid_category"],
        top_price=row["top_price"],
    )
