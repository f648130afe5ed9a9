"""The service reports' parameters and figures, declared once (REST query parameters and bodies,
GraphQL arguments and types).

A report covers the period [``from``, ``to``) cut into buckets (days, ISO weeks from Monday, or
calendar months) of the report's time zone: a day is the local day. Every bucket is present, an
empty one with zero counts and null scores, so a chart has no holes.
"""

from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.config import JsonDict

from app.cases.enums import CaseCategory, CaseStatus
from app.core import clock
from app.core.schemas import OutputModel, field_error, no_nul
from app.interactions.enums import Channel

MAX_BUCKETS = 1_000
DEFAULT_DAYS = 30
# The years a report may reach (a time zone's conversions stay far from datetime's limits).
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


class ReportBucket(StrEnum):
    """How a report's period is cut: local days, ISO weeks (from Monday) or calendar months."""

    day = "day"
    week = "week"
    month = "month"


@cache
def known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _time_zone(value: str) -> str:
    if value not in known_time_zones():
        raise ValueError("must be an IANA time zone name, e.g. Asia/Shanghai or UTC")
    return value


TimeZoneName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_time_zone)
]
# A date (its midnight in the report's time zone) or an RFC 3339 time (one without an offset is
# read in the report's time zone).
PointInTime = Annotated[
    datetime,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ]
        }
    ),
]
FilterText = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]


def _local_midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_start(local: datetime, bucket: ReportBucket) -> datetime:
    """The start of the bucket holding ``local`` (a naive local time)."""
    day = _local_midnight(local)
    if bucket is ReportBucket.week:
        return day - timedelta(days=day.weekday())
    if bucket is ReportBucket.month:
        return day.replace(day=1)
    return day


def bucket_count(start: datetime, end: datetime, zone: ZoneInfo, bucket: ReportBucket) -> int:
    """How many buckets [start, end) touches in ``zone``."""
    first = bucket_start(start.astimezone(zone).replace(tzinfo=None), bucket)
    last = end.astimezone(zone).replace(tzinfo=None)
    if bucket is ReportBucket.month:
        months = (last.year - first.year) * 12 + last.month - first.month
        return months + (1 if last > bucket_start(last, bucket) else 0)
    size = timedelta(days=7 if bucket is ReportBucket.week else 1)
    return -((first - last) // size)  # ceiling division


class ReportQuery(BaseModel):
    """A report's period and filters (REST query parameters, GraphQL arguments)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: PointInTime | None = Field(
        default=None,
        alias="from",
        description="Start of the period (included): a date (its midnight in `time_zone`) or an "
        f"RFC 3339 time. Default: {DEFAULT_DAYS} days before `to`.",
    )
    to: PointInTime | None = Field(
        default=None,
        description="End of the period (excluded), as `from`. Default: the end of today in "
        "`time_zone`.",
    )
    bucket: ReportBucket = Field(
        default=ReportBucket.day,
        description=f"How the period is cut (at most {MAX_BUCKETS:,} buckets).",
    )
    time_zone: TimeZoneName = Field(
        default="UTC",
        description="The IANA time zone of the buckets and of dates and times without an "
        "offset, e.g. `Asia/Shanghai`.",
    )
    category: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")] | None = Field(
        default=None, description="Only this category."
    )
    channel: Channel | None = Field(default=None, description="Only this channel.")
    agent: FilterText | None = Field(
        default=None, description="Only this agent (feedback's agent, a case's assignee)."
    )

    @model_validator(mode="after")
    def _resolve_period(self) -> "ReportQuery":
        """Both ends as aware times; the period within bounds and bucket count."""
        zone = ZoneInfo(self.time_zone)
        for name, value in (("from", self.from_), ("to", self.to)):
            if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
                raise field_error(
                    name, f"must be in the years {EARLIEST_YEAR} to {LATEST_YEAR}", str(value)
                )
        end = self.to
        if end is None:
            tomorrow = clock.now().astimezone(zone).date() + timedelta(days=1)
            end = datetime.combine(tomorrow, datetime.min.time(), zone)
        elif end.tzinfo is None:
            end = end.replace(tzinfo=zone)
        start = self.from_
        if start is None:
            local_end = end.astimezone(zone)
            start = datetime.combine(
                local_end.date() - timedelta(days=DEFAULT_DAYS), local_end.timetz()
            )
        elif start.tzinfo is None:
            start = start.replace(tzinfo=zone)
        if start >= end:
            raise field_error("to", "must be after `from`", str(self.to))
        buckets = bucket_count(start, end, zone, self.bucket)
        if buckets > MAX_BUCKETS:
            raise field_error(
                "bucket",
                f"the period would have {buckets:,} buckets of a {self.bucket.value}; at most "
                f"{MAX_BUCKETS:,}: take a shorter period or a larger bucket",
                self.bucket.value,
            )
        self.from_, self.to = start, end
        return self

    @property
    def start(self) -> datetime:
        assert self.from_ is not None  # resolved by validation
        return self.from_

    @property
    def end(self) -> datetime:
        assert self.to is not None
        return self.to


# ------------------------------------------------------------------------------------- satisfaction

_PERIOD: JsonDict = {
    "start": "2025-11-01T00:00:00+08:00",
    "end": "2025-11-03T00:00:00+08:00",
    "bucket": "day",
    "time_zone": "Asia/Shanghai",
}
_NPS: JsonDict = {"responses": 4, "promoters": 2, "passives": 1, "detractors": 1, "score": 25.0}
_NPS_EMPTY: JsonDict = {
    "responses": 0,
    "promoters": 0,
    "passives": 0,
    "detractors": 0,
    "score": None,
}
_CSAT: JsonDict = {"responses": 3, "satisfied": 2, "percent_satisfied": 66.7}
_CSAT_EMPTY: JsonDict = {"responses": 0, "satisfied": 0, "percent_satisfied": None}
_CES: JsonDict = {"responses": 2, "mean": 5.5}
_CES_EMPTY: JsonDict = {"responses": 0, "mean": None}


class NpsFigures(OutputModel):
    """Net Promoter Score: promoters 9–10, passives 7–8, detractors 0–6; the score is % promoters
    − % detractors (−100 to 100, one decimal), null without answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [_NPS, _NPS_EMPTY]})

    responses: int
    promoters: int
    passives: int
    detractors: int
    score: float | None


class CsatFigures(OutputModel):
    """Customer satisfaction: the share of answers of 4 or 5 (percent, one decimal), null without
    answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CSAT, _CSAT_EMPTY]})

    responses: int
    satisfied: int
    percent_satisfied: float | None


class CesFigures(OutputModel):
    """Customer effort: the mean score (1–7, two decimals), null without answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CES, _CES_EMPTY]})

    responses: int
    mean: float | None


_SATISFACTION: JsonDict = {"nps": _NPS, "csat": _CSAT, "ces": _CES}
_SATISFACTION_EMPTY: JsonDict = {"nps": _NPS_EMPTY, "csat": _CSAT_EMPTY, "ces": _CES_EMPTY}


class SatisfactionFigures(OutputModel):
    """The satisfaction figures of a set of answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SATISFACTION]})

    nps: NpsFigures
    csat: CsatFigures
    ces: CesFigures


class SatisfactionBucket(SatisfactionFigures):
    """One bucket: the answers submitted in [start, end)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "start": "2025-11-01T00:00:00+08:00",
                    "end": "2025-11-02T00:00:00+08:00",
                    **_SATISFACTION,
                }
            ]
        }
    )

    start: datetime = Field(description="Where the bucket starts (or the period, if later).")
    end: datetime = Field(description="Where the bucket ends (or the period, if earlier).")


class SatisfactionReport(OutputModel):
    """NPS, CSAT and CES of the answers submitted in [start, end), in total and per bucket."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_PERIOD,
                    "total": _SATISFACTION,
                    "buckets": [
                        {
                            "start": "2025-11-01T00:00:00+08:00",
                            "end": "2025-11-02T00:00:00+08:00",
                            **_SATISFACTION,
                        },
                        {
                            "start": "2025-11-02T00:00:00+08:00",
                            "end": "2025-11-03T00:00:00+08:00",
                            **_SATISFACTION_EMPTY,
                        },
                    ],
                }
            ]
        }
    )

    start: datetime = Field(description="The period's start (included), in `time_zone`.")
    end: datetime = Field(description="The period's end (excluded), in `time_zone`.")
    bucket: ReportBucket
    time_zone: str
    total: SatisfactionFigures
    buckets: list[SatisfactionBucket]


# -------------------------------------------------------------------------------------------- cases

_BY_CATEGORY: JsonDict = {**{c.value: 0 for c in CaseCategory}, "logistics": 2, "billing": 1}
_BY_STATUS: JsonDict = {**{s.value: 0 for s in CaseStatus}, "open": 1, "resolved": 1, "closed": 1}
_FIRST_RESPONSE: JsonDict = {"measured": 3, "median_seconds": 1800.0, "p90_seconds": 3240.0}
_RESOLUTION: JsonDict = {"measured": 2, "median_seconds": 43200.0, "p90_seconds": 79920.0}
_CASES: JsonDict = {
    "cases": 3,
    "by_category": _BY_CATEGORY,
    "by_status": _BY_STATUS,
    "first_response": _FIRST_RESPONSE,
    "resolution": _RESOLUTION,
    "sla_breached": 1,
    "sla_breach_percent": 33.3,
    "ever_resolved": 2,
    "reopened": 1,
    "reopen_percent": 50.0,
}


class CaseCategoryCounts(OutputModel):
    """Cases per category."""

    model_config = ConfigDict(json_schema_extra={"examples": [_BY_CATEGORY]})

    product_quality: int
    service_attitude: int
    logistics: int
    billing: int
    other: int


class CaseStatusCounts(OutputModel):
    """Cases per current status."""

    model_config = ConfigDict(json_schema_extra={"examples": [_BY_STATUS]})

    open: int
    in_progress: int
    waiting_customer: int
    resolved: int
    closed: int


class DurationFigures(OutputModel):
    """Business seconds (pauses while waiting for the customer excluded) of the cases that have
    the duration: median and 90th percentile, interpolated (`percentile_cont`), one decimal; null
    when none has it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _FIRST_RESPONSE,
                {"measured": 0, "median_seconds": None, "p90_seconds": None},
            ]
        }
    )

    measured: int = Field(description="How many of the cases have the duration.")
    median_seconds: float | None
    p90_seconds: float | None


class CaseFigures(OutputModel):
    """The figures of a set of cases."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CASES]})

    cases: int = Field(description="How many were opened.")
    by_category: CaseCategoryCounts
    by_status: CaseStatusCounts = Field(description="By their current status.")
    first_response: DurationFigures = Field(description="Opening to first response.")
    resolution: DurationFigures = Field(description="Opening to (last) resolution.")
    sla_breached: int = Field(description="Cases with a breached first-response or resolution SLA.")
    sla_breach_percent: float | None = Field(
        description="`sla_breached` / `cases` in percent (one decimal); null without cases."
    )
    ever_resolved: int = Field(description="Cases resolved at least once.")
    reopened: int = Field(description="Cases reopened at least once.")
    reopen_percent: float | None = Field(
        description="`reopened` / `ever_resolved` in percent (one decimal); null when none was "
        "resolved."
    )


class CaseBucket(CaseFigures):
    """One bucket: the cases opened in [start, end)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"start": "2025-11-01T00:00:00+08:00", "end": "2025-11-02T00:00:00+08:00", **_CASES}
            ]
        }
    )

    start: datetime = Field(description="Where the bucket starts (or the period, if later).")
    end: datetime = Field(description="Where the bucket ends (or the period, if earlier).")


class CaseReport(OutputModel):
    """Volume, timing, SLA and reopen figures of the cases opened in [start, end), in total and
    per bucket."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_PERIOD,
                    "end": "2025-11-02T00:00:00+08:00",
                    "total": _CASES,
                    "buckets": [
                        {
                            "start": "2025-11-01T00:00:00+08:00",
                            "end": "2025-11-02T00:00:00+08:00",
                            **_CASES,
                        }
                    ],
                }
            ]
        }
    )

    start: datetime = Field(description="The period's start (included), in `time_zone`.")
    end: datetime = Field(description="The period's end (excluded), in `time_zone`.")
    bucket: ReportBucket
    time_zone: str
    total: CaseFigures
    buckets: list[CaseBucket]
