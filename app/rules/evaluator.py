"""A rule applied to one customer in memory: the same answers as the SQL of ``compiler.py``
(tests/rules/test_agreement.py holds them to it), for checking one customer without a query per
segment, and as the readable statement of what each operator means."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from app.rules.catalogue import EXCLUDED_STATUS, FieldSpec, Kind, Op, Source
from app.rules.schemas import AllOf, AnyOf, Condition, EventCondition, Node, NotOf, Rule

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a rule can read of one customer: the profile row, the metrics row (None without
    orders), and, for behavioural conditions, the orders (each with its ``items``) and
    interactions."""

    profile: Row
    metrics: Row | None = None
    orders: Sequence[Row] = field(default_factory=tuple)
    interactions: Sequence[Row] = field(default_factory=tuple)


def evaluate(rule: Rule, snapshot: Snapshot, now: datetime) -> bool:
    return _Evaluator(snapshot, now).node(rule.root, {})


class _Evaluator:
    def __init__(self, snapshot: Snapshot, now: datetime) -> None:
        self.snapshot = snapshot
        self.now = now

    def node(self, node: Node, rows: Mapping[Source, Row]) -> bool:
        if isinstance(node, AllOf):
            return all(self.node(child, rows) for child in node.children)
        if isinstance(node, AnyOf):
            return any(self.node(child, rows) for child in node.children)
        if isinstance(node, NotOf):
            return not self.node(node.child, rows)
        if isinstance(node, EventCondition):
            return self.event(node)
        return self.condition(node, rows)

    def value(self, spec: FieldSpec, rows: Mapping[Source, Row]) -> Any:
        if spec.source in rows:
            return rows[spec.source].get(spec.column)
        if spec.source is Source.metrics:
            row = self.snapshot.metrics
            stored = None if row is None else row.get(spec.column)
            return spec.default if stored is None else stored
        return self.snapshot.profile.get(spec.column)

    def condition(self, node: Condition, rows: Mapping[Source, Row]) -> bool:
        spec = node.spec
        if spec.source is Source.order_items and Source.order_items not in rows:
            items = rows[Source.orders].get("items") or ()
            return any(self.condition(node, {**rows, Source.order_items: item}) for item in items)
        actual = self.value(spec, rows)
        if spec.kind is Kind.attribute:
            return _attribute((actual or {}).get(spec.key), node.op, node.value)
        if spec.kind is Kind.consent:
            return _consent(actual or (), spec, node.op, node.value)
        if spec.kind is Kind.string_list:
            return _string_list(actual or (), node.op, node.value)
        return _compare(actual, spec, node.op, node.value, self.now)

    def event(self, node: EventCondition) -> bool:
        rows = self.snapshot.orders if node.event.name == "order" else self.snapshot.interactions
        excluded = EXCLUDED_STATUS[node.event.name]
        start = None if node.within_days is None else self.now - timedelta(days=node.within_days)
        counted = [
            row
            for row in rows
            if row["status"] != excluded
            and (start is None or start <= row["occurred_at"] <= self.now)
            and (node.where is None or self.node(node.where, {node.event.source: row}))
        ]
        aggregate = node.aggregate
        if aggregate.function == "count":
            figure: Any = len(counted)
        else:
            assert aggregate.spec is not None
            column = aggregate.spec.column
            figure = sum((row[column] for row in counted if row[column] is not None), 0)
        return _ordered(figure, aggregate.op, aggregate.value)


def _ordered(actual: Any, op: Op, value: Any) -> bool:
    if op is Op.between:
        low, high = value
        return bool(low <= actual <= high)
    if op is Op.eq:
        return bool(actual == value)
    if op is Op.ne:
        return bool(actual != value)
    if op in (Op.lt, Op.before):
        return bool(actual < value)
    if op is Op.lte:
        return bool(actual <= value)
    if op in (Op.gt, Op.after):
        return bool(actual > value)
    return bool(actual >= value)


def _compare(actual: Any, spec: FieldSpec, op: Op, value: Any, now: datetime) -> bool:
    if op is Op.exists:
        return (actual is not None) is value
    if actual is None:
        # A missing value matches nothing, so it is among what ne and not_in match.
        return op in (Op.ne, Op.not_in)
    if op is Op.in_:
        return actual in value
    if op is Op.not_in:
        return actual not in value
    if op is Op.starts_with:
        return bool(actual.startswith(value))
    if op is Op.within_last_days:
        start = now - timedelta(days=value)
        if spec.kind is Kind.date:
            return bool(start.date() <= actual <= now.date())
        return bool(start <= actual <= now)
    return _ordered(actual, op, value)


def _string_list(actual: Sequence[str], op: Op, value: Any) -> bool:
    if op is Op.exists:
        return (len(actual) > 0) is value
    if op is Op.contains:
        return value in actual
    overlaps = any(item in actual for item in value)
    return overlaps if op is Op.in_ else not overlaps


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number(value: Any) -> Decimal:
    # A float as its shortest text: the digits stored in jsonb, compared exactly there.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _json_equal(stored: Any, value: Any) -> bool:
    """jsonb equality: same JSON type, numbers by value (1 = 1.0), true never 1."""
    if _is_number(stored) and _is_number(value):
        return _number(stored) == _number(value)
    if isinstance(stored, bool) or isinstance(value, bool):
        return isinstance(stored, bool) and isinstance(value, bool) and stored is value
    return isinstance(stored, str) and isinstance(value, str) and stored == value


def _attribute(stored: Any, op: Op, value: Any) -> bool:
    if op is Op.exists:
        return (stored is not None) is value
    if op in (Op.eq, Op.ne):
        equal = _json_equal(stored, value)
        return equal if op is Op.eq else not equal
    if op in (Op.in_, Op.not_in):
        found = any(_json_equal(stored, item) for item in value)
        return found if op is Op.in_ else not found
    if op is Op.contains:
        return isinstance(stored, list) and any(_json_equal(item, value) for item in stored)
    if op is Op.starts_with:
        return isinstance(stored, str) and stored.startswith(value)
    return _is_number(stored) and _ordered(_number(stored), op, value)


def _consent(entries: Sequence[Row], spec: FieldSpec, op: Op, value: Any) -> bool:
    statuses = [value] if op in (Op.eq, Op.ne) else list(value)
    held = any(
        entry.get("channel") == spec.key
        and entry.get("purpose") == spec.purpose
        and entry.get("status") in statuses
        for entry in entries
    )
    return held if op in (Op.eq, Op.in_) else not held
