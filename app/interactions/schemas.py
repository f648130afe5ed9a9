"""The interaction's shape, declared once.

``InteractionFields`` names every field a client may change on an interaction; ``InteractionCreate``
adds what is fixed when it is logged (the customer, the partner's ``source`` and ``external_id``);
``InteractionOut`` is the stored interaction, for REST, GraphQL and the event snapshot alike.
"""

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from app.core import clock
from app.core.schemas import InputModel, OutputModel, ShortText, field_error, no_nul
from app.customers.schemas import Attributes, ExternalId
from app.interactions.enums import Channel, Direction, InteractionKind, InteractionStatus

# The body of an interaction, measured as stored (UTF-8 bytes), not in characters.
MAX_BODY_BYTES = 64 * 1024
# A week: the longest call or meeting worth a duration.
MAX_DURATION_SECONDS = 7 * 24 * 3600
# How far in the future a completed interaction's occurred_at may be (clocks drift).
FUTURE_TOLERANCE = timedelta(minutes=5)


def _body_bytes(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_BODY_BYTES:
        raise ValueError(f"must be at most {MAX_BODY_BYTES} bytes in UTF-8")
    return value


def utc(value: datetime) -> datetime:
    """A client's time in UTC; a time without an offset is read as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("is out of range") from exc


Text500 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=r"\S"),
    AfterValidator(no_nul),
]
Body = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_BODY_BYTES),
    AfterValidator(no_nul),
    AfterValidator(_body_bytes),
]
Source = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00]+$"),
]
Time = Annotated[datetime, AfterValidator(utc)]


# Examples for the OpenAPI document (every one is validated by its model in the tests).
_ID = "01937a2c-4f10-7b2e-9c4d-5e6f7a8b9c0d"
_CUSTOMER_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
_CASE_ID = "01937a20-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
_CREATE: JsonDict = {
    "customer_id": _CUSTOMER_ID,
    "channel": "phone",
    "direction": "outbound",
    "kind": "call",
    "subject": "Delivery date for order 88231",
    "body": "Called about the late parcel; courier confirmed delivery tomorrow.",
    "agent": "li.na",
    "outcome": "resolved",
    "duration_seconds": 240,
    "occurred_at": "2025-11-25T09:30:00Z",
    "case_id": _CASE_ID,
    "source": "call-center",
    "external_id": "cc-2025-118842",
    "attributes": {"queue": "delivery"},
}
_FOLLOW_UP: JsonDict = {
    "customer_id": _CUSTOMER_ID,
    "channel": "wechat",
    "direction": "outbound",
    "kind": "message",
    "status": "planned",
    "subject": "Ask how the new shoes fit",
    "agent": "li.na",
    "due_at": "2025-12-02T09:00:00Z",
}
_OUT: JsonDict = {
    **_CREATE,
    "id": _ID,
    "status": "completed",
    "due_at": None,
    "completed_at": "2025-11-25T09:30:00Z",
    "order_id": None,
    "version": 1,
    "created_at": "2025-11-25T09:34:10Z",
    "updated_at": "2025-11-25T09:34:10Z",
}
_FOLLOW_UP_OUT: JsonDict = {
    **_FOLLOW_UP,
    "id": "01937a31-77aa-7bcd-8e9f-0a1b2c3d4e5f",
    "body": None,
    "outcome": None,
    "duration_seconds": None,
    "occurred_at": "2025-11-25T09:35:00Z",
    "completed_at": None,
    "case_id": None,
    "order_id": None,
    "source": None,
    "external_id": None,
    "attributes": {},
    "version": 1,
    "created_at": "2025-11-25T09:35:00Z",
    "updated_at": "2025-11-25T09:35:00Z",
}


class InteractionFields(BaseModel):
    """Every field a client may change on an interaction (see the module docstring)."""

    channel: Channel | None = Field(default=None, description="Where it happened.")
    direction: Direction | None = Field(
        default=None, description="`inbound` (the customer reached out) or `outbound`."
    )
    kind: InteractionKind | None = None
    status: InteractionStatus | None = Field(
        default=None,
        description="`completed` (it happened; the default), `planned` (a follow-up still to "
        "make; needs `due_at`) or `cancelled` (a follow-up dropped). A planned follow-up may "
        "become completed or cancelled; completed and cancelled are final.",
    )
    subject: Text500 | None = Field(default=None, description="At most 500 characters.")
    body: Body | None = Field(
        default=None, description="The content or notes: at most 64 KiB (65,536 bytes of UTF-8)."
    )
    agent: ShortText | None = Field(default=None, description="Who handled it on your side.")
    outcome: Text500 | None = Field(default=None, description="What came of it, in your words.")
    duration_seconds: int | None = Field(
        default=None, ge=0, le=MAX_DURATION_SECONDS, description="0 to 604,800 (7 days)."
    )
    occurred_at: Time | None = Field(
        default=None,
        description="When it happened (default: now); may be in the past, but a completed "
        "interaction not more than 5 minutes in the future. For a follow-up, when it was planned.",
    )
    due_at: Time | None = Field(
        default=None, description="When a planned follow-up is due; only for `planned`."
    )
    case_id: uuid.UUID | None = Field(
        default=None, description="A case of the same customer this interaction belongs to."
    )
    order_id: uuid.UUID | None = Field(
        default=None,
        description="An order of the same customer this interaction is about.",
    )
    attributes: Attributes | None = Field(
        default=None,
        description="Custom fields: keys `^[a-z][a-z0-9_]{0,63}$`, values scalars or lists "
        "(the limits of a customer's attributes).",
    )


_REQUIRED_NOT_NULL = ("channel", "direction", "kind", "status")


def _not_in_future(status: InteractionStatus | None, occurred_at: datetime | None) -> None:
    if (
        status in (None, InteractionStatus.COMPLETED)
        and occurred_at is not None
        and occurred_at > clock.now() + FUTURE_TOLERANCE
    ):
        raise field_error(
            "occurred_at",
            "must not be more than 5 minutes in the future for a completed interaction",
            occurred_at.isoformat(),
        )


class InteractionCreate(InteractionFields, InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE, _FOLLOW_UP]})

    customer_id: uuid.UUID = Field(description="The customer (must exist).")
    channel: Channel = Field(description="Where it happened.")
    direction: Direction = Field(description="`inbound` (the customer reached out) or `outbound`.")
    kind: InteractionKind
    status: InteractionStatus = Field(
        default=InteractionStatus.COMPLETED,
        description="`completed` (it happened; the default), `planned` (a follow-up still to "
        "make; needs `due_at`) or `cancelled`.",
    )
    source: Source | None = Field(
        default=None, description="Your system sending it (e.g. `call-center`); at most 100."
    )
    external_id: ExternalId | None = Field(
        default=None,
        description="Your id of it; needs `source`. The same (source, external_id) again is "
        "the same interaction: answered with the stored one (200), never logged twice.",
    )

    @model_validator(mode="after")
    def _rules(self) -> "InteractionCreate":
        if self.status is InteractionStatus.PLANNED and self.due_at is None:
            raise field_error("due_at", "a planned follow-up needs due_at")
        if self.status is not InteractionStatus.PLANNED and self.due_at is not None:
            raise field_error("due_at", "only a planned follow-up has due_at")
        if self.external_id is not None and self.source is None:
            raise field_error("source", "external_id needs source")
        _not_in_future(self.status, self.occurred_at)
        return self


class InteractionUpdate(InteractionFields, InputModel):
    """PATCH body: only the fields given change; null clears an optional field. `attributes`
    merges by key (a null value removes that key). `status` may go from `planned` to
    `completed` (recording `completed_at`, and `occurred_at` = now unless given) or `cancelled`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "completed", "outcome": "Customer happy with the fit"},
                {"due_at": "2025-12-03T09:00:00Z", "attributes": {"priority": "high"}},
            ]
        }
    )

    @model_validator(mode="after")
    def _not_null(self) -> "InteractionUpdate":
        for name in _REQUIRED_NOT_NULL:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise field_error(name, "cannot be null")
        return self


class InteractionOut(InteractionFields, OutputModel):
    """An interaction as stored."""

    model_config = ConfigDict(json_schema_extra={"examples": [_OUT, _FOLLOW_UP_OUT]})

    id: uuid.UUID
    customer_id: uuid.UUID
    channel: Channel
    direction: Direction
    kind: InteractionKind
    status: InteractionStatus
    occurred_at: datetime = Field(description="When it happened (for a follow-up: when planned).")
    completed_at: datetime | None = Field(
        description="When it was completed (for a follow-up: when it was done)."
    )
    source: str | None
    external_id: str | None
    attributes: dict[str, Any] = Field(default_factory=dict, description="Custom fields.")
    version: int = Field(description="Increases on every change; the ETag is built from it.")
    created_at: datetime
    updated_at: datetime


# The columns a stored interaction is read from.
STORED_FIELDS = tuple(InteractionOut.model_fields)


class InteractionSort(StrEnum):
    """A sort order: the field, `-` first for descending."""

    occurred_at = "occurred_at"
    occurred_at_desc = "-occurred_at"
    created_at = "created_at"
    created_at_desc = "-created_at"


FilterText = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]


class InteractionFilter(BaseModel):
    """Which interactions a list returns: every filter is optional, and all given must hold."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    customer_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    channel: Channel | None = None
    direction: Direction | None = None
    kind: InteractionKind | None = None
    status: InteractionStatus | None = None
    agent: FilterText | None = None
    source: FilterText | None = None
    external_id: FilterText | None = None
    occurred_after: Time | None = Field(
        default=None, description="Only those with occurred_at at or after this time."
    )
    occurred_before: Time | None = Field(
        default=None, description="Only those with occurred_at before this time."
    )


class FollowUpFilter(BaseModel):
    """Which follow-ups (interactions with a `due_at`) a list returns, by due date."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    due_before: Time | None = Field(
        default=None, description="Only those due before this time (e.g. now: the overdue ones)."
    )
    agent: FilterText | None = None
    status: InteractionStatus = Field(
        default=InteractionStatus.PLANNED,
        description="`planned` (default: still to make), `completed` or `cancelled`.",
    )
    customer_id: uuid.UUID | None = None


# ------------------------------------------------------------------------------------------- batch


class InteractionBatch(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "customer_id": _CUSTOMER_ID,
                            "channel": "email",
                            "direction": "inbound",
                            "kind": "message",
                            "subject": "Where is my order?",
                            "source": "mailbox",
                            "external_id": "msg-77120",
                        },
                        {"customer_id": _CUSTOMER_ID, "channel": "fax", "kind": "message"},
                    ]
                }
            ]
        }
    )

    checked_later = frozenset({"items"})  # each item is validated, and reported, on its own

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="Up to 1,000 interactions, each a `POST /v1/interactions` body.",
    )


BatchStatus = Literal["created", "existing"]

_CREATED_ITEM: JsonDict = {"index": 0, "status": "created", "id": _ID, "error": None}
_FAILED_ITEM: JsonDict = {
    "index": 1,
    "status": "error",
    "id": None,
    "error": {
        "type": "urn:kehu:problem:validation_failed",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "The item is not valid; see errors[].",
        "code": "validation_failed",
        "errors": [
            {
                "field": "channel",
                "message": "Input should be 'phone', 'email', 'sms', 'wechat', 'social', "
                "'chat', 'in_person', 'web' or 'app'",
            },
            {"field": "direction", "message": "Field required"},
        ],
    },
}


class InteractionBatchItemResult(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CREATED_ITEM, _FAILED_ITEM]})

    index: int
    status: Literal["created", "existing", "error"] = Field(
        description="`created`, `existing` (its source and external_id were logged before: "
        "nothing written) or `error`."
    )
    id: uuid.UUID | None = None
    error: dict[str, Any] | None = Field(
        default=None, description="A problem object for this item when status is `error`."
    )


class InteractionBatchResult(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [_CREATED_ITEM, _FAILED_ITEM],
                    "created": 1,
                    "existing": 0,
                    "errors": 1,
                }
            ]
        }
    )

    results: list[InteractionBatchItemResult]
    created: int
    existing: int
    errors: int
