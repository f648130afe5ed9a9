"""The reads of the rule language: the customers a rule matches, and the snapshots the evaluator
applies a rule to."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from app.customers.repository import LIVE
from app.db import Connection
from app.rules.catalogue import Source
from app.rules.compiler import (
    compile_rule,
    customers,
    customers_with_metrics,
    interactions,
    metrics,
    order_items,
    orders,
)
from app.rules.evaluator import Snapshot
from app.rules.schemas import Rule


def matching_ids(rule: Rule, now: datetime) -> Select[Any]:
    """The ids (``customer_id``) of the live customers ``rule`` matches, as one statement."""
    compiled = compile_rule(rule, now)
    source = customers_with_metrics() if compiled.uses_metrics else customers
    return (
        select(customers.c.id.label("customer_id"))
        .select_from(source)
        .where(LIVE, compiled.predicate)
    )


async def snapshots(
    conn: Connection, customer_ids: Sequence[uuid.UUID], rule: Rule
) -> dict[uuid.UUID, Snapshot]:
    """What ``rule`` reads of each live customer in ``customer_ids`` (four statements at most,
    whatever the number of customers); customers deleted or unknown are left out."""
    if not customer_ids:
        return {}
    ids = list(customer_ids)
    sources = rule.sources()
    profiles = {
        row.id: dict(row._mapping)
        for row in await conn.execute(select(customers).where(customers.c.id.in_(ids), LIVE))
    }
    figures: dict[uuid.UUID, dict[str, Any]] = {}
    if Source.metrics in sources:
        query = select(metrics).where(metrics.c.customer_id.in_(ids))
        figures = {row.customer_id: dict(row._mapping) for row in await conn.execute(query)}
    bought: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    if Source.orders in sources:
        by_order: dict[uuid.UUID, dict[str, Any]] = {}
        for row in await conn.execute(select(orders).where(orders.c.customer_id.in_(ids))):
            order = {**row._mapping, "items": []}
            by_order[row.id] = order
            bought[row.customer_id].append(order)
        lines = select(order_items).where(order_items.c.customer_id.in_(ids))
        for row in await conn.execute(lines):
            by_order[row.order_id]["items"].append(dict(row._mapping))
    contacted: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    if Source.interactions in sources:
        query = select(interactions).where(interactions.c.customer_id.in_(ids))
        for row in await conn.execute(query):
            contacted[row.customer_id].append(dict(row._mapping))
    return {
        customer_id: Snapshot(
            profile,
            figures.get(customer_id),
            bought.get(customer_id, ()),
            contacted.get(customer_id, ()),
        )
        for customer_id, profile in profiles.items()
    }
