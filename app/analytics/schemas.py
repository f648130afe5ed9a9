"""The shape of customer metrics, analytics refreshes and the overview, declared once (REST bodies,
GraphQL types). docs/analytics.md explains every figure."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, JsonValue
from pydantic.config import JsonDict

from app.analytics.enums import LifecycleStage, RefreshStatus, RfmSegment, ValueTier
from app.core import clock
from app.core.schemas import InputModel, Money, OutputModel

# The earliest as_of a refresh accepts (its RFM window must stay a valid date range).
EARLIEST_AS_OF = date(1970, 1, 1)


def _not_future(value: date) -> date:
    if value < EARLIEST_AS_OF:
        raise ValueError(f"must be {EARLIEST_AS_OF.isoformat()} or later")
    if value > clock.now().date():
        raise ValueError("must not be in the future (UTC)")
    return value


AsOf = Annotated[date, AfterValidator(_not_future)]

_CUSTOMER_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
_REFRESH_ID = "01937c40-1a2b-7c3d-8e4f-5a6b7c8d9e0f"


def _money(amount: str) -> JsonDict:
    return {"amount": amount, "currency": "CNY"}


# ------------------------------------------------------------------------------------ metrics

_METRICS: JsonDict = {
    "customer_id": _CUSTOMER_ID,
    "order_count": 4,
    "gross_revenue": _money("820.00"),
    "refunded_amount": _money("20.00"),
    "net_revenue": _money("800.00"),
    "refund_count": 1,
    "average_order_value": _money("200.00"),
    "first_order_at": "2025-03-02T10:00:00Z",
    "last_order_at": "2026-06-20T08:30:00Z",
    "as_of": "2026-06-30",
    "recency_days": 10,
    "rfm_recency": 5,
    "rfm_frequency": 4,
    "rfm_monetary": 4,
    "rfm_segment": "champions",
    "value_tier": "A",
    "lifecycle_stage": "active",
    "lifecycle_changed_at": "2026-06-30T02:15:04Z",
    "p_alive": 0.93,
    "churn_risk": 0.07,
    "expected_purchases_90d": 0.8,
    "expected_purchases_365d": 2.9,
    "expected_order_value": _money("198.40"),
    "clv_12m": _money("552.10"),
    "computed_at": "2026-06-30T02:15:04Z",
    "updated_at": "2026-06-20T08:30:01Z",
}
_PROSPECT: JsonDict = {
    **dict.fromkeys(_METRICS),
    "customer_id": _CUSTOMER_ID,
    "order_count": 0,
    "gross_revenue": _money("0.00"),
    "refunded_amount": _money("0.00"),
    "net_revenue": _money("0.00"),
    "refund_count": 0,
    "lifecycle_stage": "prospect",
}


class CustomerMetricsOut(OutputModel):
    """One customer's figures. The order figures are current (kept in each order's transaction);
    the rest is what the latest refresh computed as of `as_of` (null before the first one). A
    customer without orders is a `prospect` with zero figures."""

    model_config = ConfigDict(json_schema_extra={"examples": [_METRICS, _PROSPECT]})

    customer_id: uuid.UUID
    order_count: int = Field(description="Orders not cancelled.")
    gross_revenue: Money = Field(description="The totals of those orders.")
    refunded_amount: Money = Field(description="What was refunded on them.")
    net_revenue: Money = Field(description="`gross_revenue` - `refunded_amount`.")
    refund_count: int = Field(description="Refunds on those orders.")
    average_order_value: Money | None = Field(
        description="`net_revenue` / `order_count`, rounded to cents; null without orders."
    )
    first_order_at: datetime | None
    last_order_at: datetime | None
    as_of: date | None = Field(description="The day the refresh figures below are as of.")
    recency_days: int | None = Field(
        description="Days from the last order before the cutoff to `as_of` (UTC days)."
    )
    rfm_recency: int | None = Field(
        description="R score 1-5 (5: most recent); null outside the window."
    )
    rfm_frequency: int | None = Field(description="F score 1-5 (orders in the RFM window).")
    rfm_monetary: int | None = Field(description="M score 1-5 (net revenue in the RFM window).")
    rfm_segment: RfmSegment | None = Field(description="The segment of (R, F).")
    value_tier: ValueTier | None = Field(
        description="A, B or C by cumulative net revenue share; null without orders."
    )
    lifecycle_stage: LifecycleStage
    lifecycle_changed_at: datetime | None = Field(
        description="When a refresh last changed `lifecycle_stage`."
    )
    p_alive: float | None = Field(description="BG/NBD probability that the customer is alive.")
    churn_risk: float | None = Field(description="1 - `p_alive`.")
    expected_purchases_90d: float | None
    expected_purchases_365d: float | None
    expected_order_value: Money | None = Field(description="Gamma-Gamma expected spend per order.")
    clv_12m: Money | None = Field(description="Discounted 12-month customer lifetime value.")
    computed_at: datetime | None = Field(description="When a refresh last wrote the figures.")
    updated_at: datetime | None = Field(description="When the order figures last changed.")


# ----------------------------------------------------------------------------------- refreshes

_REQUEST: JsonDict = {"as_of": "2026-06-30"}
_REFRESH: JsonDict = {
    "id": _REFRESH_ID,
    "status": "running",
    "as_of": "2026-06-30",
    "requested_by": "ops-dashboard",
    "requested_at": "2026-07-01T09:00:00Z",
    "started_at": "2026-07-01T09:00:01Z",
    "finished_at": None,
    "step": "predictions",
    "steps_done": 1,
    "steps_total": 3,
    "figures": {"metrics": {"seconds": 41.2, "customers": 1000000, "lifecycle_changes": 1204}},
    "error": None,
}
_FAILED: JsonDict = {
    **_REFRESH,
    "status": "failed",
    "finished_at": "2026-07-01T09:00:45Z",
    "error": "predictions: ValueError: not enough repeat buyers to fit",
}


class RefreshCreate(InputModel):
    """POST /v1/analytics/refresh (the body is optional)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REQUEST, {}]})

    as_of: AsOf | None = Field(
        default=None,
        description="Compute everything as if this day (UTC) were today: orders before the next "
        "day's 00:00 UTC count. Default: today (UTC); not in the future.",
    )


class RefreshOut(OutputModel):
    """A full analytics refresh and its progress."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REFRESH, _FAILED]})

    id: uuid.UUID
    status: RefreshStatus
    as_of: date
    requested_by: str = Field(description="The API key's name, or `schedule`.")
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    step: str | None = Field(
        description="The step running now, or the last one (`metrics`, `predictions`, "
        "`recommendations`)."
    )
    steps_done: int
    steps_total: int
    figures: dict[str, Any] = Field(description="Per finished step: `seconds` and what it counted.")
    error: str | None = Field(description="Why it failed (the step and the error).")


# ------------------------------------------------------------------------------------ overview

_STAGES: JsonDict = {
    "prospect": 120,
    "new": 40,
    "active": 310,
    "at_risk": 55,
    "churned": 70,
    "reactivated": 5,
}
_TIERS: JsonDict = {"a": 92, "b": 118, "c": 270, "none": 120}
_SEGMENTS: JsonDict = {
    "champions": 60,
    "loyal": 70,
    "potential_loyalist": 45,
    "new": 30,
    "promising": 25,
    "need_attention": 20,
    "about_to_sleep": 35,
    "at_risk": 40,
    "cannot_lose": 5,
    "lost": 80,
    "none": 190,
}
_REVENUE: JsonDict = {
    "gross": _money("125000.00"),
    "refunds": _money("3500.00"),
    "net": _money("121500.00"),
}
_BUCKETS: list[JsonValue] = [
    {"low": 0.0, "high": 0.2, "customers": 280},
    {"low": 0.2, "high": 0.4, "customers": 90},
    {"low": 0.4, "high": 0.6, "customers": 50},
    {"low": 0.6, "high": 0.8, "customers": 30},
    {"low": 0.8, "high": 1.0, "customers": 30},
]
_OVERVIEW: JsonDict = {
    "as_of": "2026-06-30",
    "refreshed_at": "2026-07-01T02:16:10Z",
    "customers": 600,
    "lifecycle_stages": _STAGES,
    "value_tiers": _TIERS,
    "rfm_segments": _SEGMENTS,
    "revenue": _REVENUE,
    "customers_with_orders": 480,
    "repeat_customers": 300,
    "repeat_rate": 0.625,
    "average_clv": _money("310.25"),
    "churn_risk": _BUCKETS,
}


class LifecycleCounts(OutputModel):
    """Customers per lifecycle stage (a customer without orders is a prospect)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_STAGES]})

    prospect: int
    new: int
    active: int
    at_risk: int
    churned: int
    reactivated: int


class ValueTierCounts(OutputModel):
    """Customers per value tier; `none`: no orders as of the refresh."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TIERS]})

    a: int
    b: int
    c: int
    none: int


class RfmSegmentCounts(OutputModel):
    """Customers per RFM segment; `none`: no order in the RFM window."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SEGMENTS]})

    champions: int
    loyal: int
    potential_loyalist: int
    new: int
    promising: int
    need_attention: int
    about_to_sleep: int
    at_risk: int
    cannot_lose: int
    lost: int
    none: int


class RevenueFigures(OutputModel):
    """Revenue of every order not cancelled, now."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REVENUE]})

    gross: Money
    refunds: Money
    net: Money


class ChurnRiskBucket(OutputModel):
    """Customers whose churn risk is in [low, high) (the last bucket includes 1)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"low": 0.0, "high": 0.2, "customers": 280}]}
    )

    low: float
    high: float
    customers: int


class AnalyticsOverview(OutputModel):
    """The customer base at a glance: the latest refresh's stages, tiers, segments and churn risk,
    and the current revenue and repeat rate. Live customers only."""

    model_config = ConfigDict(json_schema_extra={"examples": [_OVERVIEW]})

    as_of: date | None = Field(description="The as_of of the latest succeeded refresh.")
    refreshed_at: datetime | None = Field(description="When that refresh finished.")
    customers: int = Field(description="Live customers.")
    lifecycle_stages: LifecycleCounts
    value_tiers: ValueTierCounts
    rfm_segments: RfmSegmentCounts
    revenue: RevenueFigures
    customers_with_orders: int = Field(description="Customers with at least one order.")
    repeat_customers: int = Field(description="Customers with at least two orders.")
    repeat_rate: float | None = Field(
        description="`repeat_customers` / `customers_with_orders` (4 decimals); null without "
        "orders."
    )
    average_clv: Money | None = Field(
        description="Mean 12-month CLV of the customers that have one; null when none has."
    )
    churn_risk: list[ChurnRiskBucket] = Field(
        description="Customers with a churn risk, in five buckets of 0.2."
    )
