"""The case's shape, its transitions and the SLA policies, declared once.

``CaseFields`` names every field a client sets on a case; REST bodies, GraphQL inputs and types, and
the event snapshots are built from it and from ``CaseOut``. The status is never a field: it moves
only through a transition (``CaseTransitionCreate``), along ``enums.TRANSITIONS``.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from app.cases import business_time
from app.cases.enums import CaseCategory, CasePriority, CaseStatus
from app.core.schemas import InputModel, LongText, OutputModel, ShortText, field_error, no_nul
from app.customers.schemas import Attributes
from app.interactions.enums import Channel

Subject = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=r"\S"),
    AfterValidator(no_nul),
]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=r"\S"),
    AfterValidator(no_nul),
]
# One year, in minutes: the longest SLA target.
MAX_TARGET_MINUTES = 365 * 24 * 60
MAX_COMPENSATION_POINTS = 10_000_000
# How far ahead a deadline may lie in calendar time (a policy with very few business hours).
MAX_CALENDAR_YEARS = 10

_CASE_ID = "01936f20-7a1b-7c2d-8e3f-4a5b6c7d8e9f"
_CUSTOMER_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
_KEY_ID = "01936f00-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
_CREATE: JsonDict = {
    "customer_id": _CUSTOMER_ID,
    "category": "logistics",
    "priority": "high",
    "subject": "Parcel arrived damaged",
    "description": "The box was crushed; the kettle inside is dented.",
    "assignee": "li.na",
    "channel": "wechat",
    "attributes": {"order_no": "SO-20251125-0042"},
}
_COMPENSATION: JsonDict = {"points": 500, "reason": "Damaged delivery"}
_RESOLUTION: JsonDict = {
    "outcome": "replaced",
    "note": "A new kettle was sent by express.",
    "compensation": _COMPENSATION,
}
_OUT: JsonDict = {
    "id": _CASE_ID,
    "customer_id": _CUSTOMER_ID,
    "category": "logistics",
    "priority": "high",
    "subject": "Parcel arrived damaged",
    "description": "The box was crushed; the kettle inside is dented.",
    "assignee": "li.na",
    "channel": "wechat",
    "attributes": {"order_no": "SO-20251125-0042"},
    "status": "resolved",
    "opened_at": "2025-11-25T09:30:00Z",
    "first_response_due_at": "2025-11-25T13:30:00Z",
    "resolution_due_at": "2025-11-26T09:30:00Z",
    "first_responded_at": "2025-11-25T10:05:00Z",
    "first_response_seconds": 2100,
    "resolution_seconds": 18000,
    "first_response_breached_at": None,
    "resolution_breached_at": None,
    "sla_consumed_seconds": 18000,
    "sla_clock_started_at": None,
    "resolved_at": "2025-11-25T14:30:00Z",
    "closed_at": None,
    "reopen_count": 0,
    "resolution": _RESOLUTION,
    "version": 4,
    "created_at": "2025-11-25T09:30:00Z",
    "updated_at": "2025-11-25T14:30:00Z",
}
_OPEN_OUT: JsonDict = {
    **_OUT,
    "status": "open",
    "first_responded_at": None,
    "first_response_seconds": None,
    "resolution_seconds": None,
    "sla_consumed_seconds": 0,
    "sla_clock_started_at": "2025-11-25T09:30:00Z",
    "resolved_at": None,
    "resolution": None,
    "version": 1,
    "updated_at": "2025-11-25T09:30:00Z",
}


class CaseFields(BaseModel):
    """Every field a client sets on a case (not its status: that is a transition)."""

    category: CaseCategory | None = None
    priority: CasePriority | None = Field(
        default=None, description="Picks the SLA policy; default `normal`."
    )
    subject: Subject | None = None
    description: LongText | None = None
    assignee: ShortText | None = Field(default=None, description="Who works on the case.")
    channel: Channel | None = Field(default=None, description="Where the case came in.")
    attributes: Attributes | None = Field(
        default=None,
        description="Custom fields: keys `^[a-z][a-z0-9_]{0,63}$`, values scalars or lists.",
    )


class CaseCreate(CaseFields, InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _CREATE,
                {
                    "customer_id": _CUSTOMER_ID,
                    "category": "billing",
                    "subject": "Charged twice",
                },
            ]
        }
    )

    customer_id: uuid.UUID = Field(description="The customer the case is about.")
    category: CaseCategory
    priority: CasePriority = Field(
        default=CasePriority.NORMAL, description="Picks the SLA policy; default `normal`."
    )
    subject: Subject


_NOT_NULL = ("category", "priority", "subject")


class CaseUpdate(CaseFields, InputModel):
    """PATCH body: only the fields given change; null clears description, assignee or channel.
    `attributes` merges by key (a null value removes that key). A new priority moves the running
    deadlines to the new policy's targets, keeping the business time already used."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"assignee": "zhang.min"},
                {"priority": "urgent", "attributes": {"order_no": None, "vip": True}},
            ]
        }
    )

    @model_validator(mode="after")
    def _required_stay(self) -> "CaseUpdate":
        for name in _NOT_NULL:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise field_error(name, "may not be null")
        return self


class CaseCompensation(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_COMPENSATION]})

    points: int = Field(
        gt=0,
        le=MAX_COMPENSATION_POINTS,
        description="Loyalty points granted; recorded on the case (posted to the ledger once "
        "loyalty exists).",
    )
    reason: ShortText


class CaseResolution(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_RESOLUTION, {"outcome": "refunded"}]}
    )

    outcome: ShortText = Field(description="What was done, e.g. `refunded`, `replaced`.")
    note: LongText | None = None
    compensation: CaseCompensation | None = None


class CaseTransitionCreate(InputModel):
    """A move along the state machine (docs/cases.md). A resolution is required to resolve, and
    only then."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"to": "in_progress"},
                {"to": "waiting_customer", "reason": "Asked for a photo of the damage."},
                {"to": "resolved", "resolution": _RESOLUTION, "request_survey": True},
                {"to": "open", "reason": "The replacement is damaged too."},
            ]
        }
    )

    to: CaseStatus = Field(description="The status to move to.")
    reason: Reason | None = None
    resolution: CaseResolution | None = Field(
        default=None, description="Required when `to` is `resolved`, refused otherwise."
    )
    request_survey: bool = Field(
        default=True,
        description="On resolving: issue a one-time CSAT survey token, sent in the "
        "`case.resolved` event.",
    )

    @model_validator(mode="after")
    def _resolution_with_resolved(self) -> "CaseTransitionCreate":
        if self.to == CaseStatus.RESOLVED and self.resolution is None:
            raise field_error("resolution", "is required to resolve a case")
        if self.to != CaseStatus.RESOLVED and self.resolution is not None:
            raise field_error("resolution", "is only given when `to` is `resolved`")
        return self


class CaseCompensationOut(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_COMPENSATION]})

    points: int
    reason: str


class CaseResolutionOut(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_RESOLUTION]})

    outcome: str
    note: str | None = None
    compensation: CaseCompensationOut | None = None


class CaseOut(CaseFields, OutputModel):
    """A case with its SLA state. Deadlines come from the priority's SLA policy in business time;
    an unmet one is null while the case waits for the customer, and a met one stays as it was."""

    model_config = ConfigDict(json_schema_extra={"examples": [_OUT, _OPEN_OUT]})

    id: uuid.UUID
    customer_id: uuid.UUID
    category: CaseCategory
    priority: CasePriority = Field(description="Picks the SLA policy.")
    subject: str
    attributes: dict[str, Any] = Field(default_factory=dict, description="Custom fields.")
    status: CaseStatus
    opened_at: datetime
    first_response_due_at: datetime | None = Field(
        description="When the first response is due; null while paused before it was met."
    )
    resolution_due_at: datetime | None = Field(
        description="When the resolution is due; null while paused before it was met."
    )
    first_responded_at: datetime | None = Field(
        description="The first outbound interaction linked to the case (or the resolution)."
    )
    first_response_seconds: int | None = Field(
        description="Business seconds from opening to the first response, pauses excluded."
    )
    resolution_seconds: int | None = Field(
        description="Business seconds from opening to the (last) resolution, pauses excluded."
    )
    first_response_breached_at: datetime | None = Field(
        description="When the breach job found the first-response deadline missed."
    )
    resolution_breached_at: datetime | None = Field(
        description="When the breach job found the resolution deadline missed."
    )
    sla_consumed_seconds: int = Field(
        description="Business seconds used up to `sla_clock_started_at`."
    )
    sla_clock_started_at: datetime | None = Field(
        description="Since when the SLA clock runs; null while paused (waiting_customer) or "
        "stopped (resolved, closed)."
    )
    resolved_at: datetime | None
    closed_at: datetime | None
    reopen_count: int
    resolution: CaseResolutionOut | None
    version: int = Field(description="Increases on every change; the ETag is built from it.")
    created_at: datetime
    updated_at: datetime


# What a stored case has: the columns to read.
STORED_FIELDS = tuple(CaseOut.model_fields)


class CaseTransitionOut(OutputModel):
    """One status change in a case's history (the opening is the first, from null to open)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "01936f21-0a1b-7c2d-8e3f-4a5b6c7d8e90",
                    "case_id": _CASE_ID,
                    "from_status": "in_progress",
                    "to_status": "resolved",
                    "reason": None,
                    "actor": "service-desk",
                    "actor_key_id": _KEY_ID,
                    "at": "2025-11-25T14:30:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    case_id: uuid.UUID
    from_status: CaseStatus | None = Field(description="Null for the opening.")
    to_status: CaseStatus
    reason: str | None
    actor: str | None = Field(description="The name of the API key that made the change.")
    actor_key_id: uuid.UUID | None = Field(description="The id of that API key.")
    at: datetime


class CaseSort(StrEnum):
    """A sort order: the field, `-` first for descending."""

    opened_at = "opened_at"
    opened_at_desc = "-opened_at"


FilterText = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]


class CaseFilter(BaseModel):
    """Which cases a list returns: every filter is optional, and all given must hold."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    customer_id: uuid.UUID | None = None
    status: CaseStatus | None = None
    priority: CasePriority | None = None
    category: CaseCategory | None = None
    assignee: FilterText | None = None
    channel: Channel | None = None
    breached: bool | None = Field(
        default=None,
        description="true: cases with a breached deadline (first response or resolution); "
        "false: cases without one.",
    )
    opened_after: datetime | None = Field(default=None, description="Opened at or after.")
    opened_before: datetime | None = Field(default=None, description="Opened before.")


# ----------------------------------------------------------------------------------- SLA policies

_POLICY: JsonDict = {
    "first_response_minutes": 240,
    "resolution_minutes": 1440,
    "time_zone": "Asia/Shanghai",
    "weekdays": [1, 2, 3, 4, 5],
    "business_start_minute": 540,
    "business_end_minute": 1080,
}


Weekday = Annotated[int, Field(ge=1, le=7)]


class SlaPolicyFields(BaseModel):
    first_response_minutes: int = Field(
        ge=1, le=MAX_TARGET_MINUTES, description="Business minutes to the first response."
    )
    resolution_minutes: int = Field(
        ge=1, le=MAX_TARGET_MINUTES, description="Business minutes to the resolution."
    )
    time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="The IANA time zone business hours are read in, e.g. `Asia/Shanghai`.",
    )
    weekdays: list[Weekday] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6, 7],
        min_length=1,
        max_length=7,
        description="ISO weekdays the clock runs on (1 = Monday … 7 = Sunday).",
    )
    business_start_minute: int | None = Field(
        default=None,
        ge=0,
        le=1439,
        description="Business hours start, minutes after local midnight (540 = 09:00); null with "
        "`business_end_minute` for around the clock.",
    )
    business_end_minute: int | None = Field(
        default=None,
        ge=1,
        le=1440,
        description="Business hours end, minutes after local midnight (1080 = 18:00).",
    )


class SlaPolicyUpdate(SlaPolicyFields, InputModel):
    """PUT body: the whole policy. Deadlines of cases move to it at their next clock change
    (opening, transition, priority change)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _POLICY,
                {"first_response_minutes": 60, "resolution_minutes": 480},
            ]
        }
    )

    @model_validator(mode="after")
    def _a_calendar(self) -> "SlaPolicyUpdate":
        if len(set(self.weekdays)) != len(self.weekdays):
            raise field_error("weekdays", "must not repeat a day", self.weekdays)
        self.weekdays = sorted(self.weekdays)
        start, end = self.business_start_minute, self.business_end_minute
        if (start is None) != (end is None):
            raise field_error(
                "business_end_minute" if end is None else "business_start_minute",
                "business_start_minute and business_end_minute are given together, or neither",
            )
        if start is not None and end is not None and start >= end:
            raise field_error("business_end_minute", "must be after business_start_minute", end)
        if not business_time.is_valid_zone(self.time_zone):
            raise field_error(
                "time_zone", "must be an IANA time zone, e.g. Asia/Shanghai or UTC", self.time_zone
            )
        if self.first_response_minutes > self.resolution_minutes:
            raise field_error(
                "first_response_minutes", "must not be longer than resolution_minutes"
            )
        daily = 1440 if start is None or end is None else end - start
        if daily * len(self.weekdays) * 52 * MAX_CALENDAR_YEARS < self.resolution_minutes:
            raise field_error(
                "resolution_minutes",
                f"must fit into {MAX_CALENDAR_YEARS} years of these business hours",
            )
        return self


class SlaPolicyOut(SlaPolicyFields, OutputModel):
    """The SLA targets of one priority."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_POLICY,
                    "priority": "high",
                    "version": 2,
                    "updated_at": "2025-11-25T09:30:00Z",
                }
            ]
        }
    )

    priority: CasePriority
    weekdays: list[int] = Field(
        description="ISO weekdays the clock runs on (1 = Monday … 7 = Sunday)."
    )
    version: int = Field(description="Increases on every change; the ETag is built from it.")
    updated_at: datetime


class SlaPolicyList(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "priority": "urgent",
                            "first_response_minutes": 60,
                            "resolution_minutes": 480,
                            "time_zone": "UTC",
                            "weekdays": [1, 2, 3, 4, 5, 6, 7],
                            "business_start_minute": None,
                            "business_end_minute": None,
                            "version": 1,
                            "updated_at": "2025-11-25T09:30:00Z",
                        }
                    ]
                }
            ]
        }
    )

    data: list[SlaPolicyOut] = Field(description="One policy per priority, urgent first.")


POLICY_FIELDS = (*SlaPolicyOut.model_fields,)
