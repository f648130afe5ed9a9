"""A rule as one SQLAlchemy predicate over ``customers`` (joined to ``customer_metrics`` when the
rule reads a metric): never a query per condition, never SQL built from strings.

Every condition compiles to a predicate that is true or false, never NULL (a missing value is
handled explicitly), so ``not`` means what it says and the evaluator (``evaluator.py``) can follow
the same two-valued logic; a property test holds the two to the same answers.
"""

import json
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Table,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import Numeric, String

from app.analytics.models import CustomerMetrics
from app.customers.models import Customer
from app.interactions.models import Interaction
from app.orders.models import Order, OrderItem
from app.rules.catalogue import EXCLUDED_STATUS, FieldSpec, Kind, Op, Source
from app.rules.schemas import (
    AllOf,
    AnyOf,
    Condition,
    EventCondition,
    Node,
    NotOf,
    Rule,
)

customers: Table = Customer.__table__  # type: ignore[assignment]
metrics: Table = CustomerMetrics.__table__  # type: ignore[assignment]
orders: Table = Order.__table__  # type: ignore[assignment]
order_items: Table = OrderItem.__table__  # type: ignore[assignment]
interactions: Table = Interaction.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Compiled:
    predicate: ColumnElement[bool]
    # Whether the query must LEFT JOIN customer_metrics (see ``customers_with_metrics``).
    uses_metrics: bool


def compile_rule(rule: Rule, now: datetime) -> Compiled:
    """``rule`` as a predicate over ``customers`` (and ``customer_metrics``), with ``now`` the
    time its windows count back from."""
    uses_metrics = Source.metrics in rule.sources()
    return Compiled(_Compiler(now).node(rule.root, {}), uses_metrics)


def customers_with_metrics() -> FromClause:
    """The FROM a compiled rule that uses metrics needs: every customer, with its metrics row if
    it has one (a customer without orders has none)."""
    return customers.outerjoin(metrics, metrics.c.customer_id == customers.c.id)


class _Compiler:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def node(self, node: Node, tables: dict[Source, FromClause]) -> ColumnElement[bool]:
        if isinstance(node, AllOf):
            return and_(true(), *(self.node(child, tables) for child in node.children))
        if isinstance(node, AnyOf):
            return or_(false(), *(self.node(child, tables) for child in node.children))
        if isinstance(node, NotOf):
            return not_(self.node(node.child, tables))
        if isinstance(node, EventCondition):
            return self.event(node)
        return self.condition(node, tables)

    def condition(self, node: Condition, tables: dict[Source, FromClause]) -> ColumnElement[bool]:
        spec = node.spec
        if spec.source is Source.order_items and Source.order_items not in tables:
            # Some line of the order matches: each such condition is a test of its own.
            order = tables[Source.orders]
            item = order_items.alias("rule_item")
            inner = self.condition(node, {**tables, Source.order_items: item})
            return exists().where(
                item.c.customer_id == order.c.customer_id, item.c.order_id == order.c.id, inner
            )
        table = tables.get(spec.source)
        if table is None:
            table = metrics if spec.source is Source.metrics else customers
        column: ColumnElement[Any] = table.c[spec.column]
        if spec.source is Source.metrics and spec.default is not None:
            column = func.coalesce(column, literal(spec.default, type_=column.type))
        if spec.kind is Kind.attribute:
            return _attribute(column, spec.key, node.op, node.value)
        if spec.kind is Kind.consent:
            return _consent(column, spec, node.op, node.value)
        if spec.kind is Kind.string_list:
            return _string_list(column, node.op, node.value)
        return _compare(column, spec, node.op, node.value, self.now)

    def event(self, node: EventCondition) -> ColumnElement[bool]:
        table = (orders if node.event.name == "order" else interactions).alias(
            f"rule_{node.event.name}"
        )
        conditions: list[ColumnElement[bool]] = [
            table.c.customer_id == customers.c.id,
            table.c.status != EXCLUDED_STATUS[node.event.name],
        ]
        if node.within_days is not None:
            conditions += [
                table.c.occurred_at >= self.now - timedelta(days=node.within_days),
                table.c.occurred_at <= self.now,
            ]
        if node.where is not None:
            conditions.append(self.node(node.where, {node.event.source: table}))
        aggregate = node.aggregate
        if aggregate.function == "count" and aggregate.op in (Op.gte, Op.gt, Op.lt, Op.eq):
            # At least one / none: EXISTS stops at the first row.
            threshold = aggregate.value + (1 if aggregate.op is Op.gt else 0)
            if aggregate.op in (Op.gte, Op.gt) and threshold == 1:
                return exists().where(*conditions)
            if (aggregate.op is Op.lt and aggregate.value == 1) or (
                aggregate.op is Op.eq and aggregate.value == 0
            ):
                return not_(exists().where(*conditions))
        if aggregate.function == "count":
            figure: ColumnElement[Any] = func.count()
        else:
            assert aggregate.spec is not None
            figure = func.coalesce(func.sum(table.c[aggregate.spec.column]), 0)
        measured = select(figure).where(*conditions).scalar_subquery()
        return _ordered(cast(measured, Numeric), aggregate.op, aggregate.value)


def _ordered(column: ColumnElement[Any], op: Op, value: Any) -> ColumnElement[bool]:
    if op is Op.between:
        low, high = value
        return and_(column >= low, column <= high)
    comparison = {
        Op.eq: operator.eq,
        Op.ne: operator.ne,
        Op.lt: operator.lt,
        Op.before: operator.lt,
        Op.lte: operator.le,
        Op.gt: operator.gt,
        Op.after: operator.gt,
        Op.gte: operator.ge,
    }[op]
    predicate: ColumnElement[bool] = comparison(column, value)
    return predicate


def _compare(
    column: ColumnElement[Any], spec: FieldSpec, op: Op, value: Any, now: datetime
) -> ColumnElement[bool]:
    present = column.is_not(None)

    def guarded(predicate: ColumnElement[bool]) -> ColumnElement[bool]:
        # NULL compares as unknown; a missing value is simply not a match.
        return and_(present, predicate) if spec.nullable else predicate

    def negated(predicate: ColumnElement[bool]) -> ColumnElement[bool]:
        return or_(column.is_(None), not_(predicate)) if spec.nullable else not_(predicate)

    if op is Op.exists:
        return present if value else column.is_(None)
    if op is Op.ne:
        return negated(column == value)
    if op is Op.in_:
        return guarded(column.in_(list(value)))
    if op is Op.not_in:
        return negated(column.in_(list(value)))
    if op is Op.starts_with:
        return guarded(column.startswith(value, autoescape=True))
    if op is Op.within_last_days:
        start = now - timedelta(days=value)
        if spec.kind is Kind.date:
            return guarded(and_(column >= start.date(), column <= now.date()))
        return guarded(and_(column >= start, column <= now))
    return guarded(_ordered(column, op, value))


def _string_list(column: ColumnElement[Any], op: Op, value: Any) -> ColumnElement[bool]:
    if op is Op.exists:
        return func.cardinality(column) > 0 if value else func.cardinality(column) == 0
    if op is Op.contains:
        contained: ColumnElement[bool] = column.contains(type_coerce([value], ARRAY(String)))
        return contained
    overlap: ColumnElement[bool] = column.overlap(type_coerce(list(value), ARRAY(String)))
    return overlap if op is Op.in_ else not_(overlap)


def _jsonb(value: Any) -> ColumnElement[Any]:
    return cast(literal(json.dumps(value), String), JSONB)


def _attribute(column: ColumnElement[Any], key: str, op: Op, value: Any) -> ColumnElement[bool]:
    element = column.op("->")(key)
    if op is Op.exists:
        present = func.coalesce(func.jsonb_typeof(element), "null") != "null"
        return present if value else not_(present)
    if op in (Op.eq, Op.ne):
        match = column.bool_op("@>")(_jsonb({key: value}))
        return match if op is Op.eq else not_(match)
    if op in (Op.in_, Op.not_in):
        any_match = or_(*(column.bool_op("@>")(_jsonb({key: item})) for item in value))
        return any_match if op is Op.in_ else not_(any_match)
    if op is Op.contains:
        return column.bool_op("@>")(_jsonb({key: [value]}))
    if op is Op.starts_with:
        text = column.op("->>", return_type=String)(key)
        # CASE keeps the order: only a string is matched (PostgreSQL may reorder an AND).
        return case(
            (func.jsonb_typeof(element) == "string", text.startswith(value, autoescape=True)),
            else_=false(),
        )
    number = cast(column.op("->>", return_type=String)(key), Numeric)
    return case(
        (func.jsonb_typeof(element) == "number", _ordered(number, op, value)), else_=false()
    )


def _consent(
    column: ColumnElement[Any], spec: FieldSpec, op: Op, value: Any
) -> ColumnElement[bool]:
    def holds(status: str) -> ColumnElement[bool]:
        entry = {"channel": spec.key, "purpose": spec.purpose, "status": status}
        return column.bool_op("@>")(_jsonb([entry]))

    statuses = [value] if op in (Op.eq, Op.ne) else list(value)
    any_held = or_(*(holds(status) for status in statuses))
    return any_held if op in (Op.eq, Op.in_) else not_(any_held)
