"""The rule tree: parsed once from JSON into typed nodes, with every error located at the JSON path
of the bad node (``body.rule.all.1.value``), then compiled to SQL (``compiler.py``) or evaluated
for one customer (``evaluator.py``). ``Rule`` is a pydantic type: a model field ``rule: Rule``
parses and checks it, and serializes it back to its normalized JSON.

The tree, as docs/rules.md shows it: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``,
conditions ``{"field", "op", "value"}`` over the catalogue (``catalogue.py``), and behavioural
conditions ``{"event": "order", "where": {...}, "within_days": 90, "count": {"op", "value"}}`` (or
``"sum": {"field", "op", "value"}``).
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from app.core.schemas import Loc, OutputModel, field_error, hostile_json
from app.rules.catalogue import (
    EVENTS,
    MONEY_LIMIT,
    EventSpec,
    FieldSpec,
    Kind,
    Op,
    Source,
    profile_field,
)

MAX_DEPTH = 8
MAX_CONDITIONS = 50
MAX_CHILDREN = 50
MAX_LIST = 500
MAX_TEXT = 320
MAX_ATTRIBUTE_TEXT = 2_000
MAX_WINDOW_DAYS = 36_500
# Numbers an attribute or a float metric is compared with: beyond any stored figure.
NUMBER_LIMIT = Decimal(10) ** 15
AGGREGATE_OPS = (Op.eq, Op.ne, Op.lt, Op.lte, Op.gt, Op.gte, Op.between)


@dataclass(frozen=True, slots=True)
class Condition:
    spec: FieldSpec
    op: Op
    # Normalized by kind: str, int, Decimal, float, date, datetime, bool (exists), a tuple for
    # in / not_in / between; an attribute's JSON scalar as sent (numbers as Decimal for order).
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class NotOf:
    child: "Node"


@dataclass(frozen=True, slots=True)
class Aggregate:
    function: Literal["count", "sum"]
    # The summed field (None for count).
    spec: FieldSpec | None
    op: Op
    value: Any


@dataclass(frozen=True, slots=True)
class EventCondition:
    event: EventSpec
    where: "Node | None"
    within_days: int | None
    aggregate: Aggregate


Node = AllOf | AnyOf | NotOf | Condition | EventCondition

RULE_EXAMPLE: dict[str, Any] = {
    "all": [
        {"field": "country", "op": "eq", "value": "CN"},
        {
            "any": [
                {"field": "metrics.rfm_segment", "op": "in", "value": ["champions", "loyal"]},
                {"field": "tags", "op": "contains", "value": "outdoor"},
            ]
        },
        {
            "event": "order",
            "where": {"field": "items.category", "op": "eq", "value": "winter"},
            "within_days": 90,
            "count": {"op": "gte", "value": 2},
        },
    ]
}

RULE_JSON_SCHEMA: JsonSchemaValue = {
    "type": "object",
    "title": "Rule",
    "description": 'A rule of the rule language (docs/rules.md): `{"all": [...]}`, '
    '`{"any": [...]}`, `{"not": {...}}`, a condition `{"field", "op", "value"}` on a field of '
    '`GET /v1/rules/fields`, or a behavioural condition `{"event": "order"|"interaction", '
    '"where": rule, "within_days": n, "count": {"op", "value"}}` (or `"sum": {"field", "op", '
    f'"value"}}`). At most {MAX_DEPTH} levels, {MAX_CONDITIONS} conditions and {MAX_LIST} list '
    "values.",
    "additionalProperties": True,
    "examples": [RULE_EXAMPLE],
}


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed rule, and its normalized JSON (``source``: what is stored and echoed)."""

    root: Node
    source: dict[str, Any]
    # Read by app/api/graphql/pydantic_types.py: a Rule is the JSON scalar there.
    graphql_json: ClassVar[bool] = True

    @classmethod
    def parse(cls, data: Any) -> "Rule":
        return parse_rule(data)

    def conditions(self) -> Iterator[Condition | EventCondition]:
        yield from _conditions(self.root)

    def sources(self) -> frozenset[Source]:
        """Every place the rule reads (the scopes it needs, the changes that can move it)."""
        found: set[Source] = set()
        for condition in self.conditions():
            if isinstance(condition, EventCondition):
                found.add(condition.event.source)
            else:
                found.add(condition.spec.source)
        return frozenset(found)

    def uses_pii(self) -> bool:
        return any(isinstance(c, Condition) and c.spec.pii for c in self.conditions())

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda rule: rule.source, when_used="always"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return RULE_JSON_SCHEMA


def _validate(value: Any) -> Rule:
    return value if isinstance(value, Rule) else parse_rule(value)


def _conditions(node: Node) -> Iterator[Condition | EventCondition]:
    if isinstance(node, AllOf | AnyOf):
        for child in node.children:
            yield from _conditions(child)
    elif isinstance(node, NotOf):
        yield from _conditions(node.child)
    else:
        yield node
        if isinstance(node, EventCondition) and node.where is not None:
            yield from _conditions(node.where)


class _Count:
    conditions = 0


def parse_rule(data: Any) -> Rule:
    """The rule ``data`` (parsed JSON) describes; a pydantic ``ValidationError`` located at the
    bad node otherwise."""
    found = hostile_json(data)
    if found is not None:
        raise field_error(found[0], found[1])
    root = _node(data, (), 0, _Count(), None)
    return Rule(root, _json(root))


def _fail(loc: Loc, message: str) -> Exception:
    return field_error(loc, message)


def _node(data: Any, loc: Loc, depth: int, count: _Count, event: EventSpec | None) -> Node:
    if not isinstance(data, dict):
        raise _fail(loc, "must be an object: a condition, or all, any or not")
    if depth >= MAX_DEPTH:
        raise _fail(loc, f"a rule nests at most {MAX_DEPTH} levels")
    for group, build in (("all", AllOf), ("any", AnyOf)):
        if group in data:
            _only(data, loc, {group})
            children = data[group]
            if not isinstance(children, list):
                raise _fail((*loc, group), "must be a list of rules")
            if len(children) > MAX_CHILDREN:
                raise _fail((*loc, group), f"at most {MAX_CHILDREN} rules in a list")
            return build(
                tuple(
                    _node(child, (*loc, group, i), depth + 1, count, event)
                    for i, child in enumerate(children)
                )
            )
    if "not" in data:
        _only(data, loc, {"not"})
        return NotOf(_node(data["not"], (*loc, "not"), depth + 1, count, event))
    if "event" in data:
        if event is not None:
            raise _fail((*loc, "event"), "an event condition cannot sit inside another's where")
        return _event(data, loc, depth, count)
    if "field" in data:
        count.conditions += 1
        if count.conditions > MAX_CONDITIONS:
            raise _fail(loc, f"a rule has at most {MAX_CONDITIONS} conditions")
        return _condition(data, loc, event)
    raise _fail(loc, "must have one of the keys all, any, not, field or event")


def _only(data: dict[str, Any], loc: Loc, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            raise _fail((*loc, str(key)), f"unknown key beside {', '.join(sorted(allowed))}")


def _condition(data: dict[str, Any], loc: Loc, event: EventSpec | None) -> Condition:
    _only(data, loc, {"field", "op", "value"})
    name = data["field"]
    if not isinstance(name, str):
        raise _fail((*loc, "field"), "must be a field name (GET /v1/rules/fields)")
    spec = event.fields.get(name) if event is not None else profile_field(name)
    if spec is None:
        where = f"an {event.name} event" if event is not None else "a customer"
        raise _fail(
            (*loc, "field"),
            f"{_quoted(name)} is not a field of {where} (GET /v1/rules/fields lists them)",
        )
    op = _op(data.get("op"), (*loc, "op"), spec.operators, spec.name, text=spec.kind is Kind.string)
    if "value" not in data:
        raise _fail((*loc, "value"), "is required")
    return Condition(spec, op, _operand(spec, op, data["value"], (*loc, "value")))


def _quoted(text: str) -> str:
    return repr(text[:80])


def _op(raw: Any, loc: Loc, allowed: tuple[Op, ...], name: str, *, text: bool = False) -> Op:
    names = ", ".join(op.value for op in allowed)
    if not isinstance(raw, str) or raw not in Op._value2member_map_:
        raise _fail(loc, f"must be one of {names}")
    op = Op(raw)
    if op not in allowed:
        hint = ""
        if op is Op.contains and text:
            hint = " (text is never matched inside: a leading wildcard cannot use an index; "
            hint += "search with q, which is trigram-indexed)"
        raise _fail(loc, f"{op.value} does not apply to {name}: use one of {names}{hint}")
    return op


def _operand(spec: FieldSpec, op: Op, raw: Any, loc: Loc) -> Any:
    if op is Op.exists:
        if not isinstance(raw, bool):
            raise _fail(loc, "must be true or false")
        return raw
    if op is Op.within_last_days:
        return _whole(raw, loc, 0, MAX_WINDOW_DAYS, "a number of days")
    if op in (Op.in_, Op.not_in):
        if not isinstance(raw, list) or not raw:
            raise _fail(loc, "must be a non-empty list")
        if len(raw) > MAX_LIST:
            raise _fail(loc, f"at most {MAX_LIST} values")
        values = [_scalar(spec, op, item, (*loc, i)) for i, item in enumerate(raw)]
        return tuple(dict.fromkeys(values)) if spec.kind is not Kind.attribute else tuple(values)
    if op is Op.between:
        if not isinstance(raw, list) or len(raw) != 2:
            raise _fail(loc, "must be a list of two values, [low, high] (both included)")
        low, high = (_scalar(spec, op, item, (*loc, i)) for i, item in enumerate(raw))
        if low > high:
            raise _fail(loc, "the low value must not be above the high one")
        return (low, high)
    return _scalar(spec, op, raw, loc)


_ORDERING = (Op.lt, Op.lte, Op.gt, Op.gte, Op.between, Op.before, Op.after)


def _scalar(spec: FieldSpec, op: Op, raw: Any, loc: Loc) -> Any:
    kind = spec.kind
    if kind in (Kind.string, Kind.enum, Kind.string_list, Kind.consent):
        text = _text(raw, loc, MAX_TEXT)
        if spec.lower_case or kind is Kind.string_list:
            text = text.lower()
        if spec.upper_case:
            text = text.upper()
        if len(text) > MAX_TEXT:
            # Case folding can lengthen text (ß -> SS): the normalized value must parse again.
            raise _fail(loc, f"at most {MAX_TEXT} characters")
        if spec.values and op is not Op.starts_with and text not in spec.values:
            raise _fail(loc, f"must be one of {', '.join(spec.values)}")
        return text
    if kind is Kind.integer:
        low, high = spec.bounds or (-(2**53), 2**53)
        return _whole(raw, loc, low, high, "an integer")
    if kind is Kind.decimal:
        return _decimal(raw, loc, MONEY_LIMIT)
    if kind is Kind.number:
        return float(_decimal(raw, loc, NUMBER_LIMIT, strings=False))
    if kind is Kind.date:
        return _date(raw, loc)
    if kind is Kind.datetime:
        return _datetime(raw, loc)
    return _attribute_value(op, raw, loc)


def _attribute_value(op: Op, raw: Any, loc: Loc) -> Any:
    if op in _ORDERING:
        return _decimal(raw, loc, NUMBER_LIMIT, strings=False)
    if op is Op.starts_with:
        return _text(raw, loc, MAX_ATTRIBUTE_TEXT)
    if isinstance(raw, str):
        return _text(raw, loc, MAX_ATTRIBUTE_TEXT)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        _decimal(raw, loc, NUMBER_LIMIT, strings=False)
        return raw
    raise _fail(loc, "must be a string, number or boolean")


def _text(raw: Any, loc: Loc, limit: int) -> str:
    if not isinstance(raw, str) or not raw:
        raise _fail(loc, "must be a non-empty string")
    if len(raw) > limit:
        raise _fail(loc, f"at most {limit} characters")
    return raw


def _whole(raw: Any, loc: Loc, low: int, high: int, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _fail(loc, f"must be {what}")
    if not low <= raw <= high:
        raise _fail(loc, f"must be between {low} and {high}")
    return raw


def _decimal(raw: Any, loc: Loc, limit: Decimal, *, strings: bool = True) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _fail(loc, "must be a number" + (" or a decimal string" if strings else ""))
    if isinstance(raw, str) and not strings:
        raise _fail(loc, "must be a number")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _fail(loc, "must be a finite number")
    try:
        # A float as its shortest text: the digits the client sent, not its binary expansion.
        value = Decimal(repr(raw) if isinstance(raw, float) else raw)
    except (InvalidOperation, ValueError):
        raise _fail(loc, "must be a decimal number such as 199.00") from None
    if not value.is_finite() or not -limit < value < limit:
        raise _fail(loc, f"must be a finite number between -{limit:.0E} and {limit:.0E}")
    return value


def _date(raw: Any, loc: Loc) -> date:
    if isinstance(raw, str) and len(raw) == 10:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise _fail(loc, "must be a date such as 2026-06-30")


def _datetime(raw: Any, loc: Loc) -> datetime:
    if isinstance(raw, str) and 10 <= len(raw) <= 40:
        try:
            parsed = datetime.fromisoformat(raw)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise _fail(loc, "must be an RFC 3339 time (2026-06-30T08:00:00Z) or a date (2026-06-30)")


def _event(data: dict[str, Any], loc: Loc, depth: int, count: _Count) -> EventCondition:
    _only(data, loc, {"event", "where", "within_days", "count", "sum"})
    name = data["event"]
    event = EVENTS.get(name) if isinstance(name, str) else None
    if event is None:
        raise _fail((*loc, "event"), f"must be one of {', '.join(EVENTS)}")
    count.conditions += 1
    if count.conditions > MAX_CONDITIONS:
        raise _fail(loc, f"a rule has at most {MAX_CONDITIONS} conditions")
    where = None
    if data.get("where") is not None:
        where = _node(data["where"], (*loc, "where"), depth + 1, count, event)
    within_days = None
    if data.get("within_days") is not None:
        within_days = _whole(
            data["within_days"], (*loc, "within_days"), 1, MAX_WINDOW_DAYS, "a number of days"
        )
    if "count" in data and "sum" in data:
        raise _fail((*loc, "sum"), "give count or sum, not both")
    if "sum" in data:
        aggregate = _aggregate(data["sum"], (*loc, "sum"), event, "sum")
    elif "count" in data:
        aggregate = _aggregate(data["count"], (*loc, "count"), event, "count")
    else:
        aggregate = Aggregate("count", None, Op.gte, 1)
    return EventCondition(event, where, within_days, aggregate)


def _aggregate(
    data: Any, loc: Loc, event: EventSpec, function: Literal["count", "sum"]
) -> Aggregate:
    if not isinstance(data, dict):
        raise _fail(loc, "must be an object with op and value")
    spec: FieldSpec | None = None
    if function == "sum":
        _only(data, loc, {"field", "op", "value"})
        name = data.get("field")
        if name not in event.summable:
            raise _fail((*loc, "field"), f"must be one of {', '.join(event.summable)}")
        spec = event.fields[name]
    else:
        _only(data, loc, {"op", "value"})
    op = _op(data.get("op"), (*loc, "op"), AGGREGATE_OPS, function)
    if "value" not in data:
        raise _fail((*loc, "value"), "is required")
    raw = data["value"]

    def one(item: Any, where: Loc) -> Any:
        if spec is None or spec.kind is Kind.integer:
            return _whole(item, where, -(2**62), 2**62, "an integer")
        return _decimal(item, where, NUMBER_LIMIT)

    if op is Op.between:
        if not isinstance(raw, list) or len(raw) != 2:
            raise _fail((*loc, "value"), "must be a list of two values, [low, high]")
        low, high = one(raw[0], (*loc, "value", 0)), one(raw[1], (*loc, "value", 1))
        if low > high:
            raise _fail((*loc, "value"), "the low value must not be above the high one")
        return Aggregate(function, spec, op, (low, high))
    return Aggregate(function, spec, op, one(raw, (*loc, "value")))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _number(value: Any) -> Any:
    """An attribute's order operand (a Decimal) as the JSON number it was sent as."""
    if isinstance(value, tuple):
        return tuple(_number(v) for v in value)
    return int(value) if value.as_tuple().exponent >= 0 else float(value)


def _json(node: Node) -> dict[str, Any]:
    if isinstance(node, AllOf):
        return {"all": [_json(child) for child in node.children]}
    if isinstance(node, AnyOf):
        return {"any": [_json(child) for child in node.children]}
    if isinstance(node, NotOf):
        return {"not": _json(node.child)}
    if isinstance(node, Condition):
        value = node.value
        if node.spec.kind is Kind.attribute and node.op in _ORDERING:
            # Sent as JSON numbers and parsed again only as numbers: not as decimal strings.
            value = _number(value)
        return {"field": node.spec.name, "op": node.op.value, "value": _plain(value)}
    aggregate: dict[str, Any] = {
        "op": node.aggregate.op.value,
        "value": _plain(node.aggregate.value),
    }
    if node.aggregate.spec is not None:
        aggregate = {"field": node.aggregate.spec.name, **aggregate}
    out: dict[str, Any] = {"event": node.event.name}
    if node.where is not None:
        out["where"] = _json(node.where)
    if node.within_days is not None:
        out["within_days"] = node.within_days
    out[node.aggregate.function] = aggregate
    return out


# ------------------------------------------------------------------------------------ the catalogue


_FIELD_EXAMPLE: JsonDict = {
    "name": "metrics.rfm_segment",
    "type": "enum",
    "operators": ["eq", "ne", "in", "not_in", "exists"],
    "indexed_operators": [],
    "values": ["champions", "loyal"],
    "pii": False,
    "description": "Named RFM segment.",
}


class RuleFieldOut(OutputModel):
    """A field a rule may name."""

    model_config = ConfigDict(json_schema_extra={"examples": [_FIELD_EXAMPLE]})

    name: str = Field(
        description="`attributes.<key>` and `consent.<channel>.<purpose>` are "
        "families: put a key (or a channel and purpose) in place of the brackets."
    )
    type: Kind
    operators: list[Op]
    indexed_operators: list[Op] = Field(
        description="The operators an index serves on this field; the others scan (still one "
        "statement, fine for a segment refresh, slower as an interactive search over millions)."
    )
    values: list[str] = Field(description="The values an enum field takes (empty otherwise).")
    pii: bool = Field(description="Naming it in a rule needs the pii:read scope.")
    description: str

    @classmethod
    def of(cls, spec: FieldSpec) -> "RuleFieldOut":
        return cls(
            name=spec.name,
            type=spec.kind,
            operators=list(spec.operators),
            indexed_operators=list(spec.indexed),
            values=list(spec.values),
            pii=spec.pii,
            description=spec.description,
        )


_EVENT_EXAMPLE: JsonDict = {
    "name": "order",
    "description": "The customer's orders (cancelled ones never count), by `occurred_at`.",
    "fields": [
        {
            "name": "items.category",
            "type": "string",
            "operators": ["eq", "ne", "in", "not_in", "starts_with", "exists"],
            "indexed_operators": [],
            "values": [],
            "pii": False,
            "description": "A line's category: some line of the order matches.",
        }
    ],
    "summable": ["total"],
    "scope": "orders:read",
}


class RuleEventOut(OutputModel):
    """A behavioural condition's event: the fields its `where` may name, and what `sum` adds."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT_EXAMPLE]})

    name: str
    description: str
    fields: list[RuleFieldOut]
    summable: list[str]
    scope: str = Field(description="The read scope a rule naming this event needs.")


class RuleCatalogueOut(OutputModel):
    """Every field and event the rule language knows, and its limits."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fields": [_FIELD_EXAMPLE],
                    "events": [_EVENT_EXAMPLE],
                    "limits": {
                        "depth": MAX_DEPTH,
                        "conditions": MAX_CONDITIONS,
                        "children": MAX_CHILDREN,
                        "list_values": MAX_LIST,
                        "window_days": MAX_WINDOW_DAYS,
                    },
                }
            ]
        }
    )

    fields: list[RuleFieldOut]
    events: list[RuleEventOut]
    limits: dict[str, int]
