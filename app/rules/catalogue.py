"""The published field catalogue of the rule language: every field a rule may name, with its kind,
operators and description (``GET /v1/rules/fields`` lists it as it is here).

A field names a place, not a column: ``country`` is the profile's, ``metrics.order_count`` the
customer's order figures (0 for a customer without orders), ``attributes.<key>`` a custom field,
``consent.<channel>.<purpose>`` a consent status. The behavioural leaves (``{"event": "order", ...}``)
have catalogues of their own, one per event.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.analytics.enums import LifecycleStage, RfmSegment, ValueTier
from app.customers.schemas import (
    ATTRIBUTE_KEY,
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    Education,
    Gender,
    IncomeBand,
)
from app.interactions.enums import Channel, Direction, InteractionKind, InteractionStatus
from app.orders.enums import OrderChannel, OrderStatus


class Op(StrEnum):
    eq = "eq"
    ne = "ne"
    lt = "lt"
    lte = "lte"
    gt = "gt"
    gte = "gte"
    in_ = "in"
    not_in = "not_in"
    contains = "contains"
    starts_with = "starts_with"
    exists = "exists"
    between = "between"
    within_last_days = "within_last_days"
    before = "before"
    after = "after"


class Kind(StrEnum):
    """What a field holds; it decides the operators and what a value must be."""

    string = "string"
    enum = "enum"
    integer = "integer"
    decimal = "decimal"
    number = "number"
    date = "date"
    datetime = "datetime"
    string_list = "string_list"
    attribute = "attribute"
    consent = "consent"


_ORDERED = (Op.eq, Op.ne, Op.lt, Op.lte, Op.gt, Op.gte, Op.between, Op.exists)
_DATED = (
    Op.eq,
    Op.ne,
    Op.before,
    Op.after,
    Op.lt,
    Op.lte,
    Op.gt,
    Op.gte,
    Op.between,
    Op.within_last_days,
    Op.exists,
)
OPERATORS: dict[Kind, tuple[Op, ...]] = {
    # No `contains` on text: a leading-wildcard match cannot use an index (use `q` instead).
    Kind.string: (Op.eq, Op.ne, Op.in_, Op.not_in, Op.starts_with, Op.exists),
    Kind.enum: (Op.eq, Op.ne, Op.in_, Op.not_in, Op.exists),
    Kind.integer: _ORDERED,
    Kind.decimal: _ORDERED,
    Kind.number: _ORDERED,
    Kind.date: _DATED,
    Kind.datetime: _DATED,
    Kind.string_list: (Op.contains, Op.in_, Op.not_in, Op.exists),
    Kind.attribute: (
        Op.eq,
        Op.ne,
        Op.in_,
        Op.not_in,
        Op.lt,
        Op.lte,
        Op.gt,
        Op.gte,
        Op.between,
        Op.contains,
        Op.starts_with,
        Op.exists,
    ),
    Kind.consent: (Op.eq, Op.ne, Op.in_, Op.not_in),
}


class Source(StrEnum):
    """Where a field is read from (and the read scope a rule naming it needs)."""

    profile = "profile"
    metrics = "metrics"
    orders = "orders"
    order_items = "order_items"
    interactions = "interactions"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    description: str
    source: Source
    # The column it is read from, in the source's table (and in a snapshot's dict).
    column: str
    # May be missing (NULL): `eq` and the comparisons are false then, `ne` and `not_in` true.
    nullable: bool = True
    values: tuple[str, ...] = ()
    pii: bool = False
    # What a missing metrics row reads as (a customer without orders).
    default: Any = None
    # The operators an index serves, for the catalogue and docs/rules.md.
    indexed: tuple[Op, ...] = ()
    # Inclusive bounds of a number the column can be compared with.
    bounds: tuple[int, int] | None = None
    lower_case: bool = False
    upper_case: bool = False
    # For attributes.<key> and consent.<channel>.<purpose>: the key, or (channel, purpose).
    key: str = ""
    purpose: str = ""

    @property
    def operators(self) -> tuple[Op, ...]:
        return OPERATORS[self.kind]


def _values(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


INT32 = (-(2**31), 2**31 - 1)
INT16 = (-(2**15), 2**15 - 1)
# Money columns hold up to 10^14 (metrics) or 10^12 (orders); a value past them matches nothing
# the column can hold, so it is refused as a mistake.
MONEY_LIMIT = Decimal(10) ** 14
_EQ_INDEXED = (Op.eq, Op.in_)


def _profile(name: str, kind: Kind, description: str, **extra: Any) -> FieldSpec:
    return FieldSpec(name, kind, description, Source.profile, name, **extra)


def _metric(name: str, kind: Kind, description: str, **extra: Any) -> FieldSpec:
    return FieldSpec(f"metrics.{name}", kind, description, Source.metrics, name, **extra)


PROFILE_FIELDS: tuple[FieldSpec, ...] = (
    _profile(
        "external_id", Kind.string, "The customer's id in a partner system.", indexed=_EQ_INDEXED
    ),
    _profile(
        "email",
        Kind.string,
        "Email, lower-cased; needs the pii:read scope.",
        pii=True,
        lower_case=True,
        indexed=_EQ_INDEXED,
    ),
    _profile(
        "phone",
        Kind.string,
        "E.164 phone; needs the pii:read scope.",
        pii=True,
        indexed=_EQ_INDEXED,
    ),
    _profile("first_name", Kind.string, "Given name."),
    _profile("last_name", Kind.string, "Family name."),
    _profile("gender", Kind.enum, "Gender.", values=_values(Gender)),
    _profile("birth_date", Kind.date, "Birth date; needs the pii:read scope.", pii=True),
    _profile("locale", Kind.string, "BCP 47 language tag (zh-CN)."),
    _profile(
        "country",
        Kind.string,
        "ISO 3166-1 alpha-2, upper-cased (CN).",
        upper_case=True,
        indexed=_EQ_INDEXED,
    ),
    _profile("region", Kind.string, "Province, state or region."),
    _profile("city", Kind.string, "City."),
    _profile("income_band", Kind.enum, "Income band.", values=_values(IncomeBand)),
    _profile("education", Kind.enum, "Highest education.", values=_values(Education)),
    _profile("occupation", Kind.string, "Occupation."),
    _profile(
        "tags",
        Kind.string_list,
        "Psychographic and interest tags, lower-cased: `contains` one tag, `in` any of them, "
        "`not_in` none of them, `exists` at least one.",
        nullable=False,
        lower_case=True,
        indexed=(Op.contains, Op.in_),
    ),
    _profile("source_channel", Kind.string, "Where the customer came from."),
    _profile("owner", Kind.string, "The account owner."),
    _profile(
        "created_at",
        Kind.datetime,
        "When the customer was created in Kehu.",
        nullable=False,
        indexed=(Op.before, Op.after, Op.lt, Op.lte, Op.gt, Op.gte, Op.between),
    ),
    _profile("updated_at", Kind.datetime, "When the profile last changed.", nullable=False),
)

METRICS_FIELDS: tuple[FieldSpec, ...] = (
    _metric(
        "order_count",
        Kind.integer,
        "Orders, not cancelled (0 without orders).",
        nullable=False,
        default=0,
        bounds=INT32,
    ),
    _metric(
        "gross_revenue",
        Kind.decimal,
        "Sum of the order totals (0 without orders).",
        nullable=False,
        default=Decimal(0),
    ),
    _metric(
        "refunded_amount",
        Kind.decimal,
        "Sum refunded (0 without orders).",
        nullable=False,
        default=Decimal(0),
    ),
    _metric(
        "net_revenue",
        Kind.decimal,
        "Gross revenue less refunds (0 without orders).",
        nullable=False,
        default=Decimal(0),
    ),
    _metric("refund_count", Kind.integer, "Refunds.", nullable=False, default=0, bounds=INT32),
    _metric("first_order_at", Kind.datetime, "The first order's time."),
    _metric("last_order_at", Kind.datetime, "The latest order's time."),
    _metric("average_order_value", Kind.decimal, "Net revenue per order."),
    _metric(
        "recency_days", Kind.integer, "Days since the last order, as of the refresh.", bounds=INT32
    ),
    _metric("rfm_recency", Kind.integer, "RFM recency score 1-5.", bounds=INT16),
    _metric("rfm_frequency", Kind.integer, "RFM frequency score 1-5.", bounds=INT16),
    _metric("rfm_monetary", Kind.integer, "RFM monetary score 1-5.", bounds=INT16),
    _metric("rfm_segment", Kind.enum, "Named RFM segment.", values=_values(RfmSegment)),
    _metric(
        "value_tier",
        Kind.enum,
        "Value tier by revenue share: A (key), B (normal), C (potential).",
        values=_values(ValueTier),
        upper_case=True,
    ),
    _metric(
        "lifecycle_stage",
        Kind.enum,
        "Lifecycle stage (`prospect` without orders).",
        values=_values(LifecycleStage),
        nullable=False,
        default=LifecycleStage.PROSPECT.value,
    ),
    _metric("p_alive", Kind.number, "Probability the customer is still active (BG/NBD), 0-1."),
    _metric("churn_risk", Kind.number, "1 - p_alive."),
    _metric("expected_purchases_90d", Kind.number, "Expected purchases in the next 90 days."),
    _metric("expected_purchases_365d", Kind.number, "Expected purchases in the next 365 days."),
    _metric("expected_order_value", Kind.decimal, "Expected order value (Gamma-Gamma)."),
    _metric("clv_12m", Kind.decimal, "Predicted 12-month customer lifetime value."),
)

_FIXED: dict[str, FieldSpec] = {spec.name: spec for spec in (*PROFILE_FIELDS, *METRICS_FIELDS)}

ATTRIBUTE_FAMILY = FieldSpec(
    "attributes.<key>",
    Kind.attribute,
    "A custom field. The value's JSON type decides the comparison: strings and booleans by "
    "equality, numbers also by order (`lt`, `between`, ...; an attribute that is not a number "
    "never matches those), `contains` an element of a list attribute, `starts_with` a text "
    "prefix. `eq`, `in` and `contains` are served by the attributes index.",
    Source.profile,
    "attributes",
    indexed=(Op.eq, Op.in_, Op.contains),
)
CONSENT_FAMILY = FieldSpec(
    "consent.<channel>.<purpose>",
    Kind.consent,
    "The consent status for a channel and purpose (`consent.email.marketing eq granted`); a "
    "customer who never answered has none (`ne granted` matches them).",
    Source.profile,
    "consent",
    values=_values(ConsentStatus),
)


def profile_field(name: str) -> FieldSpec | None:
    """The customer field a rule names, or None if the catalogue has no such field."""
    if name in _FIXED:
        return _FIXED[name]
    family, _, rest = name.partition(".")
    if family == "attributes" and ATTRIBUTE_KEY.fullmatch(rest):
        return FieldSpec(
            name,
            Kind.attribute,
            ATTRIBUTE_FAMILY.description,
            Source.profile,
            "attributes",
            indexed=ATTRIBUTE_FAMILY.indexed,
            key=rest,
        )
    if family == "consent":
        channel, _, purpose = rest.partition(".")
        if channel in _values(ConsentChannel) and purpose in _values(ConsentPurpose):
            return FieldSpec(
                name,
                Kind.consent,
                CONSENT_FAMILY.description,
                Source.profile,
                "consent",
                values=CONSENT_FAMILY.values,
                key=channel,
                purpose=purpose,
            )
    return None


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A behavioural leaf's event: its rows, the fields `where` may name, and what `sum` adds."""

    name: str
    description: str
    source: Source
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    summable: tuple[str, ...] = ()


def _order(name: str, kind: Kind, description: str, **extra: Any) -> tuple[str, FieldSpec]:
    return name, FieldSpec(name, kind, description, Source.orders, name, **extra)


def _item(name: str, description: str) -> tuple[str, FieldSpec]:
    column = name.removeprefix("items.")
    return name, FieldSpec(name, Kind.string, description, Source.order_items, column)


def _interaction(name: str, kind: Kind, description: str, **extra: Any) -> tuple[str, FieldSpec]:
    return name, FieldSpec(name, kind, description, Source.interactions, name, **extra)


EVENTS: dict[str, EventSpec] = {
    "order": EventSpec(
        "order",
        "The customer's orders (cancelled ones never count), by `occurred_at`.",
        Source.orders,
        dict(
            [
                _order(
                    "status",
                    Kind.enum,
                    "Order status.",
                    values=_values(OrderStatus),
                    nullable=False,
                ),
                _order(
                    "channel",
                    Kind.enum,
                    "Sales channel.",
                    values=_values(OrderChannel),
                    nullable=False,
                ),
                _order("currency", Kind.string, "ISO 4217 code.", nullable=False, upper_case=True),
                _order("total", Kind.decimal, "The order total.", nullable=False),
                _order("source", Kind.string, "The partner system that sent it."),
                _item("items.sku", "A line's SKU: some line of the order matches."),
                _item("items.category", "A line's category: some line of the order matches."),
                _item("items.name", "A line's product name: some line of the order matches."),
            ]
        ),
        summable=("total",),
    ),
    "interaction": EventSpec(
        "interaction",
        "The customer's interactions (cancelled follow-ups never count), by `occurred_at`.",
        Source.interactions,
        dict(
            [
                _interaction(
                    "channel", Kind.enum, "Channel.", values=_values(Channel), nullable=False
                ),
                _interaction(
                    "direction", Kind.enum, "Direction.", values=_values(Direction), nullable=False
                ),
                _interaction(
                    "kind", Kind.enum, "Kind.", values=_values(InteractionKind), nullable=False
                ),
                _interaction(
                    "status",
                    Kind.enum,
                    "`completed`, or `planned` (a follow-up).",
                    values=_values(InteractionStatus),
                    nullable=False,
                ),
                _interaction("agent", Kind.string, "Who handled it."),
                _interaction("outcome", Kind.string, "Its outcome."),
                _interaction(
                    "duration_seconds", Kind.integer, "Duration in seconds.", bounds=INT32
                ),
            ]
        ),
        summable=("duration_seconds",),
    ),
}
# What an event leaf excludes before anything else: the status that means it never happened.
EXCLUDED_STATUS = {
    "order": OrderStatus.CANCELLED.value,
    "interaction": InteractionStatus.CANCELLED.value,
}
