"""The rule parser (app/rules/schemas.py): valid rules become typed nodes and their normalized JSON
(``Rule.source``, which parses again to itself), and every mistake is one pydantic
``ValidationError`` located at the JSON path of the bad node, with a message that says what to
send instead. Hostile JSON never raises anything else. No database."""

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app.rules.catalogue import METRICS_FIELDS, PROFILE_FIELDS, Op, Source, profile_field
from app.rules.schemas import (
    MAX_CHILDREN,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_LIST,
    MAX_TEXT,
    RULE_EXAMPLE,
    Aggregate,
    AllOf,
    AnyOf,
    Condition,
    EventCondition,
    NotOf,
    Rule,
)


def cond(field: Any, op: Any, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


CITY = cond("city", "eq", "Shanghai")


def error_of(data: Any) -> tuple[tuple[int | str, ...], str]:
    """The location and message of the single error ``data`` gives."""
    with pytest.raises(ValidationError) as caught:
        Rule.parse(data)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return errors[0]["loc"], errors[0]["msg"]


def nested(key: str, times: int, leaf: Any) -> Any:
    data = leaf
    for _ in range(times):
        data = {key: data}
    return data


# --- valid rules --------------------------------------------------------------------------------


def test_the_example_parses_to_typed_nodes():
    rule = Rule.parse(RULE_EXAMPLE)

    assert rule.source == RULE_EXAMPLE
    assert isinstance(rule.root, AllOf)
    country, group, event = rule.root.children
    assert isinstance(country, Condition)
    assert (country.spec.name, country.op, country.value) == ("country", Op.eq, "CN")
    assert isinstance(group, AnyOf)
    segment, tags = group.children
    assert isinstance(segment, Condition)
    assert segment.op is Op.in_
    assert segment.value == ("champions", "loyal")
    assert isinstance(tags, Condition)
    assert (tags.spec.name, tags.op, tags.value) == ("tags", Op.contains, "outdoor")
    assert isinstance(event, EventCondition)
    assert event.event.name == "order"
    assert event.within_days == 90
    assert event.aggregate == Aggregate("count", None, Op.gte, 2)
    assert isinstance(event.where, Condition)
    assert event.where.spec.name == "items.category"
    assert event.where.spec.source is Source.order_items
    assert event.where.value == "winter"


# (condition sent, value in rule.source, value in the parsed Condition)
NORMALIZED = [
    (cond("tags", "contains", "OutDoor"), "outdoor", "outdoor"),
    (cond("tags", "in", ["Tea", "tea", "COFFEE", "tea"]), ["tea", "coffee"], ("tea", "coffee")),
    (cond("email", "eq", "Ann@Example.COM"), "ann@example.com", "ann@example.com"),
    (cond("email", "starts_with", "ANN@"), "ann@", "ann@"),
    (cond("country", "eq", "cn"), "CN", "CN"),
    (cond("country", "not_in", ["cn", "CN", "de"]), ["CN", "DE"], ("CN", "DE")),
    (cond("city", "in", ["Beijing", "beijing", "Beijing"]), ["Beijing", "beijing"], None),
    (cond("metrics.value_tier", "eq", "a"), "A", "A"),
    (cond("metrics.rfm_segment", "in", ["loyal", "loyal"]), ["loyal"], ("loyal",)),
    (cond("consent.email.marketing", "ne", "granted"), "granted", "granted"),
    (cond("metrics.gross_revenue", "gt", 199.5), "199.5", Decimal("199.5")),
    (cond("metrics.gross_revenue", "gte", "199.00"), "199.00", Decimal("199.00")),
    (cond("metrics.net_revenue", "lt", 100), "100", Decimal(100)),
    (
        cond("metrics.clv_12m", "between", [10, "20.50"]),
        ["10", "20.50"],
        (Decimal(10), Decimal("20.50")),
    ),
    (cond("metrics.p_alive", "gte", 1), 1.0, 1.0),
    (cond("metrics.churn_risk", "lt", 0.25), 0.25, 0.25),
    (cond("metrics.order_count", "gte", 3), 3, 3),
    (cond("metrics.rfm_recency", "lte", 32767), 32767, 32767),
    (cond("metrics.recency_days", "between", [0, 30]), [0, 30], (0, 30)),
    (
        cond("created_at", "after", "2026-06-30"),
        "2026-06-30T00:00:00Z",
        datetime(2026, 6, 30, tzinfo=UTC),
    ),
    (
        cond("created_at", "before", "2026-06-30T10:00:00+02:00"),
        "2026-06-30T08:00:00Z",
        datetime(2026, 6, 30, 8, tzinfo=UTC),
    ),
    (
        cond("updated_at", "eq", "2026-06-30T08:00:00"),
        "2026-06-30T08:00:00Z",
        datetime(2026, 6, 30, 8, tzinfo=UTC),
    ),
    (
        cond("metrics.last_order_at", "gt", "2026-06-30T08:00:00.25Z"),
        "2026-06-30T08:00:00.250000Z",
        datetime(2026, 6, 30, 8, 0, 0, 250000, tzinfo=UTC),
    ),
    (
        cond("metrics.first_order_at", "between", ["2026-01-01", "2026-01-01T00:00:00Z"]),
        ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"],
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
    ),
    (
        cond("birth_date", "between", ["1990-01-01", "2000-12-31"]),
        ["1990-01-01", "2000-12-31"],
        (date(1990, 1, 1), date(2000, 12, 31)),
    ),
    (cond("metrics.last_order_at", "within_last_days", 30), 30, 30),
    (cond("birth_date", "within_last_days", 0), 0, 0),
    (cond("city", "exists", False), False, False),
    (cond("tags", "exists", True), True, True),
    (cond("attributes.vip", "eq", True), True, True),
    (cond("attributes.size", "eq", 42), 42, 42),
    (cond("attributes.size", "gt", 5), 5, Decimal(5)),
    (cond("attributes.size", "lte", 0.1), 0.1, Decimal("0.1")),
    (cond("attributes.size", "between", [1, 2.5]), [1, 2.5], (Decimal(1), Decimal("2.5"))),
    # Attribute lists keep every value: 1, true and 1.0 are different JSON values.
    (cond("attributes.level", "in", [1, True, 1.0, "1"]), [1, True, 1.0, "1"], None),
    (cond("attributes.brand", "starts_with", "Ac"), "Ac", "Ac"),
]


@pytest.mark.parametrize(("sent", "stored", "value"), NORMALIZED)
def test_values_are_normalized_per_kind(sent, stored, value):
    rule = Rule.parse(sent)

    assert rule.source == {**sent, "value": stored}
    assert isinstance(rule.root, Condition)
    assert rule.root.spec.name == sent["field"]
    assert rule.root.op == Op(sent["op"])
    if value is not None:
        assert rule.root.value == value
        assert type(rule.root.value) is type(value)


@pytest.mark.parametrize(("sent", "stored", "value"), NORMALIZED)
def test_the_normalized_json_parses_again_to_itself(sent, stored, value):
    source = Rule.parse(sent).source

    again = Rule.parse(source)

    assert again.source == source
    assert again.root == Rule.parse(sent).root


def test_a_datetime_is_kept_in_utc():
    rule = Rule.parse(cond("created_at", "eq", "2026-07-01T01:30:00+08:00"))

    assert isinstance(rule.root, Condition)
    assert rule.root.value == datetime(2026, 6, 30, 17, 30, tzinfo=UTC)
    assert rule.root.value.utcoffset().total_seconds() == 0
    assert rule.source["value"] == "2026-06-30T17:30:00Z"


def test_an_event_condition_writes_out_the_default_count():
    rule = Rule.parse({"event": "order"})

    assert rule.source == {"event": "order", "count": {"op": "gte", "value": 1}}
    assert isinstance(rule.root, EventCondition)
    assert rule.root.where is None
    assert rule.root.within_days is None
    assert rule.root.aggregate == Aggregate("count", None, Op.gte, 1)


def test_null_where_and_window_are_left_out():
    rule = Rule.parse({"event": "interaction", "where": None, "within_days": None})

    assert rule.source == {"event": "interaction", "count": {"op": "gte", "value": 1}}


def test_an_event_condition_keeps_its_where_window_and_count():
    sent = {
        "event": "interaction",
        "where": {"all": [cond("channel", "eq", "phone"), cond("agent", "starts_with", "Li")]},
        "within_days": 30,
        "count": {"op": "between", "value": [2, 5]},
    }

    rule = Rule.parse(sent)

    assert rule.source == sent
    assert isinstance(rule.root, EventCondition)
    assert rule.root.aggregate == Aggregate("count", None, Op.between, (2, 5))
    assert isinstance(rule.root.where, AllOf)
    assert [c.spec.source for c in rule.conditions() if isinstance(c, Condition)] == [
        Source.interactions,
        Source.interactions,
    ]


def test_sum_over_the_order_total_is_a_decimal_string():
    rule = Rule.parse(
        {
            "event": "order",
            "within_days": 365,
            "sum": {"field": "total", "op": "gte", "value": 100.5},
        }
    )

    assert rule.source == {
        "event": "order",
        "within_days": 365,
        "sum": {"field": "total", "op": "gte", "value": "100.5"},
    }
    assert isinstance(rule.root, EventCondition)
    aggregate = rule.root.aggregate
    assert aggregate.function == "sum"
    assert aggregate.spec is not None
    assert aggregate.spec.name == "total"
    assert aggregate.value == Decimal("100.5")


def test_sum_over_an_integer_field_stays_integer():
    sent = {
        "event": "interaction",
        "sum": {"field": "duration_seconds", "op": "between", "value": [60, 600]},
    }

    rule = Rule.parse(sent)

    assert rule.source == sent
    assert isinstance(rule.root, EventCondition)
    assert rule.root.aggregate.value == (60, 600)


def test_not_and_empty_groups():
    rule = Rule.parse({"not": {"any": []}})

    assert isinstance(rule.root, NotOf)
    assert rule.root.child == AnyOf(())
    assert rule.source == {"not": {"any": []}}


def test_a_rule_field_of_a_model_parses_locates_and_serializes():
    class Body(BaseModel):
        rule: Rule

    body = Body.model_validate({"rule": {"all": [cond("country", "eq", "de")]}})
    assert body.model_dump() == {"rule": {"all": [cond("country", "eq", "DE")]}}
    assert Body(rule=body.rule).rule is body.rule

    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"rule": {"all": [CITY, cond("country", "eq", "")]}})
    assert [e["loc"] for e in caught.value.errors()] == [("rule", "all", 1, "value")]


# --- errors -------------------------------------------------------------------------------------

ERRORS = [
    # The node itself.
    pytest.param([], (), "must be an object", id="root-list"),
    pytest.param("country", (), "must be an object", id="root-string"),
    pytest.param(None, (), "must be an object", id="root-null"),
    pytest.param({}, (), "one of the keys all, any, not, field or event", id="no-key"),
    pytest.param({"all": [CITY, 1]}, ("all", 1), "must be an object", id="child-number"),
    pytest.param({"not": "x"}, ("not",), "must be an object", id="not-string"),
    pytest.param({"all": {"any": []}}, ("all",), "must be a list of rules", id="all-object"),
    pytest.param(
        {"all": [CITY, {"any": [cond("city", "eq", 5)]}]},
        ("all", 1, "any", 0, "value"),
        "must be a non-empty string",
        id="deep-path",
    ),
    pytest.param(
        {"not": cond("city", "like", "x")},
        ("not", "op"),
        "must be one of eq, ne, in, not_in, starts_with, exists",
        id="unknown-op",
    ),
    # Unknown keys.
    pytest.param(
        {**CITY, "values": 1}, ("values",), "unknown key beside field, op, value", id="cond-key"
    ),
    pytest.param({"all": [], "any": []}, ("any",), "unknown key beside all", id="all-and-any"),
    pytest.param(
        {"any": [], "field": "city"}, ("field",), "unknown key beside any", id="group-key"
    ),
    pytest.param({"not": CITY, "all": []}, ("not",), "unknown key beside all", id="all-and-not"),
    pytest.param({"not": CITY, "x": 1}, ("x",), "unknown key beside not", id="not-key"),
    # Fields.
    pytest.param(
        cond("nickname", "eq", "x"),
        ("field",),
        "'nickname' is not a field of a customer (GET /v1/rules/fields lists them)",
        id="unknown-field",
    ),
    pytest.param(
        {"field": 3, "op": "eq", "value": 1}, ("field",), "GET /v1/rules/fields", id="field-number"
    ),
    pytest.param(
        cond("attributes.Size", "eq", 1), ("field",), "'attributes.Size'", id="attribute-case"
    ),
    pytest.param(
        cond("attributes.size\n", "eq", 1), ("field",), "not a field", id="attribute-newline"
    ),
    pytest.param(cond("attributes.", "eq", 1), ("field",), "not a field", id="attribute-empty"),
    pytest.param(
        cond("consent.email.spam", "eq", "granted"), ("field",), "not a field", id="consent-purpose"
    ),
    pytest.param(cond("metrics.nope", "eq", 1), ("field",), "not a field", id="metric"),
    pytest.param(
        cond("items.category", "eq", "x"), ("field",), "not a field of a customer", id="item-top"
    ),
    # Operators.
    pytest.param({"field": "city", "value": "x"}, ("op",), "must be one of", id="no-op"),
    pytest.param(cond("city", ["eq"], "x"), ("op",), "must be one of", id="op-list"),
    pytest.param(
        cond("gender", "between", ["a", "b"]),
        ("op",),
        "between does not apply to gender: use one of eq, ne, in, not_in, exists",
        id="between-enum",
    ),
    pytest.param(
        cond("metrics.order_count", "in", [1]),
        ("op",),
        "in does not apply to metrics.order_count",
        id="in-integer",
    ),
    pytest.param(
        cond("tags", "eq", "x"),
        ("op",),
        "eq does not apply to tags: use one of contains, in, not_in, exists",
        id="eq-tags",
    ),
    pytest.param(
        cond("consent.sms.service", "exists", True),
        ("op",),
        "exists does not apply",
        id="exists-consent",
    ),
    pytest.param(
        cond("created_at", "starts_with", "2026"),
        ("op",),
        "starts_with does not apply",
        id="starts-with-datetime",
    ),
    pytest.param(
        cond("metrics.p_alive", "within_last_days", 3),
        ("op",),
        "within_last_days does not apply",
        id="window-number",
    ),
    # Values by kind.
    pytest.param({"field": "city", "op": "eq"}, ("value",), "is required", id="no-value"),
    pytest.param(
        cond("city", "eq", ""), ("value",), "must be a non-empty string", id="empty-string"
    ),
    pytest.param(
        cond("city", "eq", None), ("value",), "must be a non-empty string", id="null-string"
    ),
    pytest.param(
        cond("city", "eq", "x" * (MAX_TEXT + 1)),
        ("value",),
        f"at most {MAX_TEXT} characters",
        id="long-string",
    ),
    pytest.param(
        cond("country", "eq", "ß" * (MAX_TEXT // 2 + 1)),
        ("value",),
        f"at most {MAX_TEXT} characters",
        id="long-after-upper",
    ),
    pytest.param(
        cond("gender", "eq", "robot"),
        ("value",),
        "must be one of female, male, non_binary, other, unknown",
        id="enum",
    ),
    pytest.param(
        cond("metrics.value_tier", "in", ["a", "d"]),
        ("value", 1),
        "must be one of A, B, C",
        id="enum-in",
    ),
    pytest.param(
        cond("consent.email.marketing", "eq", "yes"),
        ("value",),
        "must be one of granted, denied",
        id="consent",
    ),
    pytest.param(
        cond("metrics.order_count", "gt", 2.5), ("value",), "must be an integer", id="int-float"
    ),
    pytest.param(
        cond("metrics.order_count", "gt", 2.0),
        ("value",),
        "must be an integer",
        id="int-whole-float",
    ),
    pytest.param(
        cond("metrics.order_count", "gt", True), ("value",), "must be an integer", id="int-bool"
    ),
    pytest.param(
        cond("metrics.order_count", "gt", "3"), ("value",), "must be an integer", id="int-string"
    ),
    pytest.param(
        cond("metrics.rfm_recency", "gt", 32768),
        ("value",),
        "must be between -32768 and 32767",
        id="int16-high",
    ),
    pytest.param(
        cond("metrics.rfm_monetary", "lt", -32769),
        ("value",),
        "must be between -32768 and 32767",
        id="int16-low",
    ),
    pytest.param(
        cond("metrics.order_count", "eq", 2**31),
        ("value",),
        "must be between -2147483648 and 2147483647",
        id="int32",
    ),
    pytest.param(
        cond("metrics.recency_days", "eq", 10**400), ("value",), "must be between", id="int-huge"
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", True),
        ("value",),
        "must be a number or a decimal string",
        id="decimal-bool",
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", "abc"),
        ("value",),
        "must be a decimal number such as 199.00",
        id="decimal-text",
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", "NaN"),
        ("value",),
        "must be a finite number",
        id="decimal-nan-text",
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", "-Infinity"),
        ("value",),
        "must be a finite number",
        id="decimal-inf-text",
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", "1e400"),
        ("value",),
        "between -1E+14 and 1E+14",
        id="decimal-huge-text",
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", 10**14),
        ("value",),
        "between -1E+14 and 1E+14",
        id="decimal-limit",
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", 1e300),
        ("value",),
        "between -1E+14 and 1E+14",
        id="decimal-huge-float",
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", [1]), ("value",), "must be a number", id="decimal-list"
    ),
    pytest.param(
        cond("metrics.p_alive", "gt", "0.5"), ("value",), "must be a number", id="number-string"
    ),
    pytest.param(
        cond("metrics.p_alive", "gt", 1e16),
        ("value",),
        "between -1E+15 and 1E+15",
        id="number-huge",
    ),
    pytest.param(
        cond("birth_date", "eq", "2026-02-30"),
        ("value",),
        "must be a date such as 2026-06-30",
        id="date-day",
    ),
    pytest.param(
        cond("birth_date", "eq", "2026-06-30T00:00:00Z"),
        ("value",),
        "must be a date",
        id="date-time",
    ),
    pytest.param(
        cond("birth_date", "eq", 20260630), ("value",), "must be a date", id="date-number"
    ),
    pytest.param(
        cond("created_at", "after", "yesterday"),
        ("value",),
        "must be an RFC 3339 time (2026-06-30T08:00:00Z) or a date",
        id="datetime-word",
    ),
    pytest.param(
        cond("created_at", "after", "2026-13-01T00:00:00Z"),
        ("value",),
        "RFC 3339",
        id="datetime-month",
    ),
    pytest.param(
        cond("created_at", "after", "0001-01-01T00:00:00+01:00"),
        ("value",),
        "RFC 3339",
        id="datetime-overflow",
    ),
    pytest.param(
        cond("created_at", "after", 1782806400), ("value",), "RFC 3339", id="datetime-number"
    ),
    pytest.param(
        cond("created_at", "after", "2026-06-30T08:00:00Z" + " " * 30),
        ("value",),
        "RFC 3339",
        id="datetime-long",
    ),
    pytest.param(cond("city", "exists", "yes"), ("value",), "must be true or false", id="exists"),
    pytest.param(
        cond("created_at", "within_last_days", -1),
        ("value",),
        "must be between 0 and 36500",
        id="window-negative",
    ),
    pytest.param(
        cond("created_at", "within_last_days", 1.5),
        ("value",),
        "must be a number of days",
        id="window-float",
    ),
    pytest.param(
        cond("attributes.size", "eq", [1]),
        ("value",),
        "must be a string, number or boolean",
        id="attribute-list",
    ),
    pytest.param(
        cond("attributes.size", "eq", None),
        ("value",),
        "must be a string, number or boolean",
        id="attribute-null",
    ),
    pytest.param(
        cond("attributes.size", "gt", "5"),
        ("value",),
        "must be a number",
        id="attribute-order-text",
    ),
    pytest.param(
        cond("attributes.size", "eq", 1e16),
        ("value",),
        "between -1E+15 and 1E+15",
        id="attribute-huge",
    ),
    pytest.param(
        cond("attributes.note", "eq", "x" * 2001),
        ("value",),
        "at most 2000 characters",
        id="attribute-long",
    ),
    # Lists.
    pytest.param(cond("tags", "in", []), ("value",), "must be a non-empty list", id="in-empty"),
    pytest.param(
        cond("tags", "in", "outdoor"), ("value",), "must be a non-empty list", id="in-string"
    ),
    pytest.param(
        cond("country", "not_in", ["CN"] * (MAX_LIST + 1)),
        ("value",),
        f"at most {MAX_LIST} values",
        id="in-long",
    ),
    pytest.param(
        cond("tags", "in", ["a", ""]), ("value", 1), "must be a non-empty string", id="in-item"
    ),
    pytest.param(
        cond("metrics.order_count", "between", [1]),
        ("value",),
        "must be a list of two values, [low, high]",
        id="between-short",
    ),
    pytest.param(
        cond("metrics.order_count", "between", [1, 2, 3]),
        ("value",),
        "must be a list of two values",
        id="between-long",
    ),
    pytest.param(
        cond("metrics.order_count", "between", 1),
        ("value",),
        "must be a list of two values",
        id="between-scalar",
    ),
    pytest.param(
        cond("metrics.order_count", "between", [5, 1]),
        ("value",),
        "the low value must not be above the high one",
        id="between-order",
    ),
    pytest.param(
        cond("birth_date", "between", ["2000-01-02", "2000-01-01"]),
        ("value",),
        "the low value must not be above",
        id="between-dates",
    ),
    pytest.param(
        cond("metrics.order_count", "between", [1, "2"]),
        ("value", 1),
        "must be an integer",
        id="between-item",
    ),
    # Event conditions.
    pytest.param(
        {"event": "visit"}, ("event",), "must be one of order, interaction", id="event-name"
    ),
    pytest.param(
        {"event": ["order"]}, ("event",), "must be one of order, interaction", id="event-list"
    ),
    pytest.param(
        {"event": "order", "every": 1},
        ("every",),
        "unknown key beside count, event, sum, where, within_days",
        id="event-key",
    ),
    pytest.param({"event": "order", "where": []}, ("where",), "must be an object", id="where-list"),
    pytest.param(
        {"event": "order", "where": {"event": "order"}},
        ("where", "event"),
        "an event condition cannot sit inside another's where",
        id="event-in-where",
    ),
    pytest.param(
        {"event": "order", "where": {"all": [{"not": {"event": "interaction"}}]}},
        ("where", "all", 0, "not", "event"),
        "cannot sit inside another's where",
        id="event-deep-in-where",
    ),
    pytest.param(
        {"event": "interaction", "where": cond("items.category", "eq", "x")},
        ("where", "field"),
        "'items.category' is not a field of an interaction event",
        id="wrong-event-field",
    ),
    pytest.param(
        {"event": "order", "where": cond("country", "eq", "CN")},
        ("where", "field"),
        "'country' is not a field of an order event",
        id="profile-field-in-where",
    ),
    pytest.param(
        {"event": "order", "where": cond("status", "eq", "lost")},
        ("where", "value"),
        "must be one of",
        id="where-enum",
    ),
    pytest.param(
        {"event": "order", "within_days": 0},
        ("within_days",),
        "must be between 1 and 36500",
        id="window-zero",
    ),
    pytest.param(
        {"event": "order", "within_days": True},
        ("within_days",),
        "must be a number of days",
        id="window-bool",
    ),
    pytest.param(
        {"event": "order", "count": 2},
        ("count",),
        "must be an object with op and value",
        id="count-number",
    ),
    pytest.param(
        {"event": "order", "count": None}, ("count",), "must be an object", id="count-null"
    ),
    pytest.param(
        {"event": "order", "count": {"field": "total", "op": "gte", "value": 1}},
        ("count", "field"),
        "unknown key beside op, value",
        id="count-field",
    ),
    pytest.param(
        {"event": "order", "count": {"value": 1}},
        ("count", "op"),
        "must be one of eq, ne, lt, lte, gt, gte, between",
        id="count-no-op",
    ),
    pytest.param(
        {"event": "order", "count": {"op": "in", "value": [1]}},
        ("count", "op"),
        "in does not apply to count",
        id="count-in",
    ),
    pytest.param(
        {"event": "order", "count": {"op": "gte"}},
        ("count", "value"),
        "is required",
        id="count-no-value",
    ),
    pytest.param(
        {"event": "order", "count": {"op": "gte", "value": 1.5}},
        ("count", "value"),
        "must be an integer",
        id="count-float",
    ),
    pytest.param(
        {"event": "order", "count": {"op": "between", "value": [5, 1]}},
        ("count", "value"),
        "the low value must not be above",
        id="count-between-order",
    ),
    pytest.param(
        {"event": "order", "count": {"op": "between", "value": [1]}},
        ("count", "value"),
        "must be a list of two values",
        id="count-between-short",
    ),
    pytest.param(
        {"event": "order", "count": {"op": "between", "value": ["a", 2]}},
        ("count", "value", 0),
        "must be an integer",
        id="count-between-item",
    ),
    pytest.param(
        {"event": "order", "sum": {"field": "currency", "op": "gte", "value": 1}},
        ("sum", "field"),
        "must be one of total",
        id="sum-not-summable",
    ),
    pytest.param(
        {"event": "interaction", "sum": {"field": "total", "op": "gte", "value": 1}},
        ("sum", "field"),
        "must be one of duration_seconds",
        id="sum-wrong-event",
    ),
    pytest.param(
        {"event": "order", "sum": {"op": "gte", "value": 1}},
        ("sum", "field"),
        "must be one of total",
        id="sum-no-field",
    ),
    pytest.param(
        {"event": "order", "sum": {"field": "total", "op": "gte", "value": "lots"}},
        ("sum", "value"),
        "must be a decimal number",
        id="sum-value",
    ),
    pytest.param(
        {"event": "order", "sum": {"field": "total", "op": "gt", "value": 1, "x": 1}},
        ("sum", "x"),
        "unknown key beside field, op, value",
        id="sum-key",
    ),
    pytest.param(
        {
            "event": "order",
            "count": {"op": "gte", "value": 1},
            "sum": {"field": "total", "op": "gte", "value": 1},
        },
        ("sum",),
        "give count or sum, not both",
        id="count-and-sum",
    ),
]


@pytest.mark.parametrize(("data", "loc", "message"), ERRORS)
def test_each_mistake_is_located_and_explained(data, loc, message):
    where, text = error_of(data)

    assert where == loc
    assert message in text


def test_contains_on_text_points_to_q_and_the_index():
    loc, message = error_of(cond("city", "contains", "hai"))

    assert loc == ("op",)
    assert message.startswith("Value error, contains does not apply to city: use one of eq, ne, in")
    assert "search with q" in message
    assert "index" in message


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        (cond("metrics.order_count", "contains", 1), ("op",)),
        ({"event": "order", "count": {"op": "contains", "value": 1}}, ("count", "op")),
    ],
)
def test_contains_elsewhere_gives_no_text_search_hint(data, loc):
    where, message = error_of(data)

    assert where == loc
    assert "contains does not apply" in message
    assert "search with q" not in message


def test_limits_accept_their_maximum():
    assert Rule.parse(cond("city", "eq", "x" * MAX_TEXT)).source["value"] == "x" * MAX_TEXT
    values = [f"t{i}" for i in range(MAX_LIST)]
    assert Rule.parse(cond("tags", "in", values)).source["value"] == values
    rule = Rule.parse({"all": [CITY] * MAX_CHILDREN})
    assert len(rule.source["all"]) == MAX_CHILDREN == MAX_CONDITIONS
    assert Rule.parse(nested("not", MAX_DEPTH - 1, CITY)).source == nested(
        "not", MAX_DEPTH - 1, CITY
    )


def test_depth_over_the_limit():
    loc, message = error_of(nested("not", MAX_DEPTH, CITY))

    assert loc == ("not",) * MAX_DEPTH
    assert f"nests at most {MAX_DEPTH} levels" in message


def test_an_event_where_counts_towards_depth():
    data = nested("not", MAX_DEPTH - 2, {"event": "order", "where": {"not": CITY}})

    loc, message = error_of(data)

    assert loc == (*("not",) * (MAX_DEPTH - 2), "where", "not")
    assert f"nests at most {MAX_DEPTH} levels" in message


def test_too_many_children():
    loc, message = error_of({"all": [CITY, {"any": [CITY] * (MAX_CHILDREN + 1)}]})

    assert loc == ("all", 1, "any")
    assert f"at most {MAX_CHILDREN} rules in a list" in message


def test_too_many_conditions_across_groups():
    half = MAX_CONDITIONS // 2
    data = {"all": [{"all": [CITY] * half}, {"any": [CITY] * (MAX_CONDITIONS - half)}, CITY]}

    loc, message = error_of(data)

    assert loc == ("all", 2)
    assert f"at most {MAX_CONDITIONS} conditions" in message


def test_event_conditions_and_their_where_count_as_conditions():
    half = MAX_CONDITIONS // 2
    event = {"event": "order", "where": cond("currency", "eq", "cny")}
    fits = {"all": [{"all": [CITY] * half}, {"all": [CITY] * (MAX_CONDITIONS - half - 2)}, event]}
    assert Rule.parse(fits).source["all"][2]["where"]["value"] == "CNY"

    over = {"all": [{"all": [CITY] * half}, {"all": [CITY] * (MAX_CONDITIONS - half - 1)}, event]}
    loc, message = error_of(over)

    assert loc == ("all", 2, "where")
    assert f"at most {MAX_CONDITIONS} conditions" in message


# --- hostile input ------------------------------------------------------------------------------

HOSTILE = [
    pytest.param(cond("city", "eq", "Shang\x00hai"), ("value",), "NUL", id="nul-value"),
    pytest.param(cond("city\x00", "eq", "x"), ("field",), "NUL", id="nul-field"),
    pytest.param({**CITY, "a\x00": 1}, ("a\\u0000",), "key must not contain the NUL", id="nul-key"),
    pytest.param(
        cond("tags", "in", ["ok", "\ud800"]), ("value", 1), "lone surrogate", id="surrogate-value"
    ),
    pytest.param(cond("\udc00", "eq", "x"), ("field",), "lone surrogate", id="surrogate-field"),
    pytest.param(
        {"all": [{"\ud83d": 1}]},
        ("all", 0, "\\ud83d"),
        "key must not contain a lone surrogate",
        id="surrogate-key",
    ),
    pytest.param(
        cond("metrics.p_alive", "gt", math.nan), ("value",), "must be a finite number", id="nan"
    ),
    pytest.param(
        cond("attributes.size", "in", [1, math.inf]),
        ("value", 1),
        "must be a finite number",
        id="inf-in-list",
    ),
    pytest.param(
        {"event": "order", "count": {"op": "gt", "value": -math.inf}},
        ("count", "value"),
        "finite",
        id="inf-count",
    ),
    pytest.param(
        cond("metrics.gross_revenue", "gt", math.nan), ("value",), "finite", id="nan-decimal"
    ),
]


@pytest.mark.parametrize(("data", "loc", "message"), HOSTILE)
def test_hostile_strings_and_numbers_are_field_errors(data, loc, message):
    where, text = error_of(data)

    assert where == loc
    assert message in text


def test_deeply_nested_json_is_a_validation_error():
    for data in (
        nested("not", 100_000, CITY),
        nested("all", 100_000, []),
        cond("attributes.size", "in", nested("x", 100_000, 1)),
    ):
        with pytest.raises(ValidationError) as caught:
            Rule.parse(data)
        errors = caught.value.errors()
        assert len(errors) == 1
        assert "nested more than" in errors[0]["msg"]


KEYS = st.one_of(
    st.sampled_from(
        [
            "all",
            "any",
            "not",
            "field",
            "op",
            "value",
            "event",
            "where",
            "count",
            "sum",
            "within_days",
        ]
    ),
    st.text(max_size=6),
)
TEXT = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff"])), max_size=12
)
WORDS = st.sampled_from(
    [
        "order",
        "interaction",
        "country",
        "tags",
        "city",
        "metrics.order_count",
        "metrics.gross_revenue",
        "metrics.p_alive",
        "birth_date",
        "created_at",
        "attributes.size",
        "consent.email.marketing",
        "items.category",
        "total",
        "duration_seconds",
        *[op.value for op in Op],
        "2026-06-30",
        "2026-06-30T08:00:00Z",
        "199.00",
        "NaN",
        "granted",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    WORDS,
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(JSON)
def test_any_json_parses_or_is_a_validation_error(data):
    outcome = parse_or_error(data)

    if isinstance(outcome, ValidationError):
        assert outcome.error_count() == 1
    else:
        assert isinstance(outcome, Rule)
        assert Rule.parse(outcome.source).source == outcome.source


FIELDS = [
    *(spec.name for spec in (*PROFILE_FIELDS, *METRICS_FIELDS)),
    "attributes.size",
    "consent.email.marketing",
]
VALUES = st.one_of(
    SCALARS,
    st.text(max_size=MAX_TEXT + 10),
    st.dates().map(str),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])).map(
        datetime.isoformat
    ),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.lists(st.one_of(SCALARS, st.dates().map(str)), max_size=3),
)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(FIELDS))
    spec = profile_field(name)
    assert spec is not None
    return cond(name, draw(st.sampled_from(spec.operators)).value, draw(VALUES))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(conditions())
def test_a_condition_parses_to_what_its_normalized_json_parses_to(data):
    outcome = parse_or_error(data)

    if isinstance(outcome, ValidationError):
        assert [e["loc"][:1] for e in outcome.errors()] == [("value",)]
    else:
        again = Rule.parse(outcome.source)
        assert again.source == outcome.source
        assert again.root == outcome.root


def parse_or_error(data: Any) -> Rule | ValidationError:
    """The rule, or the ValidationError; any other exception propagates and fails the test."""
    try:
        return Rule.parse(data)
    except ValidationError as error:
        return error


# --- what a rule reads --------------------------------------------------------------------------

ORDER_ITEM = {"event": "order", "where": cond("items.category", "eq", "winter")}


@pytest.mark.parametrize(
    ("data", "sources", "pii"),
    [
        (CITY, {Source.profile}, False),
        (cond("email", "eq", "a@x.cn"), {Source.profile}, True),
        (cond("phone", "exists", True), {Source.profile}, True),
        (cond("birth_date", "after", "1990-01-01"), {Source.profile}, True),
        ({"not": {"any": [CITY, cond("phone", "eq", "+8613800000000")]}}, {Source.profile}, True),
        (cond("tags", "contains", "tea"), {Source.profile}, False),
        (cond("attributes.size", "gt", 1), {Source.profile}, False),
        (cond("consent.sms.marketing", "eq", "granted"), {Source.profile}, False),
        (cond("metrics.order_count", "gte", 2), {Source.metrics}, False),
        (cond("metrics.rfm_segment", "eq", "loyal"), {Source.metrics}, False),
        ({"event": "order"}, {Source.orders}, False),
        ({"event": "order", "where": cond("total", "gt", 10)}, {Source.orders}, False),
        (ORDER_ITEM, {Source.orders, Source.order_items}, False),
        ({"event": "interaction", "within_days": 7}, {Source.interactions}, False),
        (
            {"all": [cond("email", "starts_with", "a"), ORDER_ITEM, {"event": "interaction"}]},
            {Source.profile, Source.orders, Source.order_items, Source.interactions},
            True,
        ),
        (RULE_EXAMPLE, {Source.profile, Source.metrics, Source.orders, Source.order_items}, False),
        ({"all": []}, set(), False),
    ],
)
def test_sources_and_pii(data, sources, pii):
    rule = Rule.parse(data)

    assert rule.sources() == frozenset(sources)
    assert rule.uses_pii() is pii


def test_conditions_lists_every_leaf_in_order():
    rule = Rule.parse({"all": [CITY, {"not": ORDER_ITEM}, cond("metrics.p_alive", "gt", 0.5)]})

    names = [
        c.event.name if isinstance(c, EventCondition) else c.spec.name for c in rule.conditions()
    ]

    assert names == ["city", "order", "items.category", "metrics.p_alive"]
