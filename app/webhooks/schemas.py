"""Webhook endpoints: the one declaration of their shape (REST bodies and answers, GraphQL)."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from app.core.schemas import InputModel, OutputModel, field_error, no_nul
from app.events.schemas import EVENT_TYPES, type_pattern_matches
from app.rules.schemas import Rule

MAX_EVENT_TYPES = 50
MAX_METADATA_KEYS = 50
_PATTERN = re.compile(r"^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$")

WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2048),
    AfterValidator(no_nul),
    Field(
        description="Where deliveries are POSTed: `https://`, a public address (checked when "
        "saved and at every connection); internal addresses only where `KEHU_WEBHOOK_ALLOW_NETS` "
        "allows them.",
        json_schema_extra={"format": "uri"},
    ),
]
EventTypePattern = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(examples=["customer.*"]),
]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500), AfterValidator(no_nul)]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(no_nul)
]

_TYPES_DOC = (
    "Event types to deliver: `*` (all), `customer.*` (all of one resource) or exact types such as "
    "`customer.created`. Known types: " + ", ".join(f"`{t}`" for t in EVENT_TYPES) + "."
)


def _checked_patterns(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if not _PATTERN.match(pattern) or not any(
            type_pattern_matches(pattern, t) for t in EVENT_TYPES
        ):
            raise ValueError(
                f"{pattern!r} matches no event type; use `*`, `<resource>.*` or one of: "
                + ", ".join(EVENT_TYPES)
            )
    return sorted(set(patterns))


def _checked_metadata(metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
    return metadata


_ENDPOINT_ID = "01936f20-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
_HEALTH: JsonDict = {
    "success_rate": 0.9583,
    "attempts_24h": 48,
    "last_success_at": "2025-11-25T09:31:13.120000Z",
    "last_error": "HTTP 503",
    "failing_since": None,
    "backlog": 2,
}
_ENDPOINT_OUT: JsonDict = {
    "id": _ENDPOINT_ID,
    "url": "https://partner.example.com/kehu/webhooks",
    "description": "Shop: customer sync",
    "event_types": ["customer.*"],
    "enabled": True,
    "metadata": {"team": "shop"},
    "rule": None,
    "include_pii": False,
    "disabled_reason": None,
    "previous_secret_expires_at": None,
    "health": _HEALTH,
    "version": 1,
    "created_at": "2025-11-25T09:30:00Z",
    "updated_at": "2025-11-25T09:30:00Z",
}
_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


_RULE_DOC = (
    "Deliver only events about customers this rule matches when the event is dispatched (a rule "
    "of the rule language, docs/rules.md; it needs the read scopes of what it names). Events about "
    "no customer do not reach an endpoint with a rule. Null: every customer."
)


class WebhookEndpointCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://partner.example.com/kehu/webhooks",
                    "description": "Shop: customer sync",
                    "event_types": ["customer.*"],
                    "metadata": {"team": "shop"},
                }
            ]
        }
    )

    url: WebhookUrl
    description: Description | None = None
    event_types: list[EventTypePattern] = Field(
        default=["*"], min_length=1, max_length=MAX_EVENT_TYPES, description=_TYPES_DOC
    )
    enabled: bool = Field(default=True, description="Off: nothing is delivered until it is on.")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, description="Your own labels (≤ 50 keys); Kehu does not read them."
    )
    rule: Rule | None = Field(default=None, description=_RULE_DOC)

    @field_validator("event_types")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return _checked_patterns(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        return _checked_metadata(value)


class WebhookEndpointUpdate(InputModel):
    """Only the fields given change."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"event_types": ["customer.*", "order.*"]}]}
    )

    url: WebhookUrl | None = None
    description: Description | None = None
    event_types: list[EventTypePattern] | None = Field(
        default=None, min_length=1, max_length=MAX_EVENT_TYPES, description=_TYPES_DOC
    )
    enabled: bool | None = Field(
        default=None, description="Turning an endpoint on again clears `disabled_reason`."
    )
    metadata: dict[MetadataKey, MetadataValue] | None = Field(
        default=None, description="Replaces the labels as a whole."
    )
    rule: Rule | None = Field(default=None, description=_RULE_DOC + " Null removes the rule.")

    @field_validator("event_types")
    @classmethod
    def _patterns(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _checked_patterns(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _checked_metadata(value)

    @field_validator("url", "event_types", "enabled", "metadata", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


# The window of ``WebhookEndpointHealth.attempts_24h`` and ``success_rate``.
HEALTH_WINDOW = timedelta(hours=24)


class WebhookEndpointHealth(OutputModel):
    """How deliveries to the endpoint are going."""

    model_config = ConfigDict(json_schema_extra={"examples": [_HEALTH]})

    success_rate: float | None = Field(
        ge=0,
        le=1,
        description="Share of the attempts of the last 24 hours that succeeded (0 to 1, four "
        "decimals); null when there were none.",
    )
    attempts_24h: int = Field(description="Attempts in the last 24 hours (test pings included).")
    last_success_at: datetime | None = Field(description="When an attempt last succeeded.")
    last_error: str | None = Field(description="What the last failed attempt gave.")
    failing_since: datetime | None = Field(
        description="Since when every attempt has failed; null after any success. After 5 days "
        "of it Kehu turns the endpoint off."
    )
    backlog: int = Field(description="Deliveries waiting to be sent (`pending`).")


class WebhookEndpointOut(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ENDPOINT_OUT]})

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    metadata: dict[str, str]
    rule: dict[str, Any] | None = Field(
        default=None, description="The rule filter (normalized), or null: every customer."
    )
    include_pii: bool = Field(
        description="Whether deliveries carry PII: the key that created the endpoint had "
        "`pii:read`. Otherwise PII fields are null, as in the event feed."
    )
    disabled_reason: str | None = Field(
        description="Why Kehu turned the endpoint off (410 Gone, or failing for 5 days)."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation: until then deliveries are signed with the old secret too."
    )
    health: WebhookEndpointHealth
    version: int
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_ENDPOINT_OUT, "secret": _SECRET}]}
    )

    secret: str = Field(
        description="The signing secret (`whsec_` + base64). Shown this once; store it now."
    )


# ------------------------------------------------------------------------------------- deliveries


class WebhookDeliveryStatus(StrEnum):
    """Where a webhook delivery stands."""

    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class WebhookAttemptOutcome(StrEnum):
    """How a webhook delivery attempt ended."""

    success = "success"
    http_error = "http_error"
    timeout = "timeout"
    connection_error = "connection_error"
    redirect = "redirect"
    refused = "refused"


# The attempts a delivery shows (newest first); older ones stay stored.
ATTEMPT_LOG_LENGTH = 20
_DELIVERY_ID = "01936f21-2b3c-7d4e-9f5a-6b7c8d9e0f1a"
_EVENT_ID = "01936f12-0c1d-7e2f-8a3b-4c5d6e7f8091"
_FAILED_ATTEMPT: JsonDict = {
    "attempted_at": "2025-11-25T09:31:12.520000Z",
    "outcome": "http_error",
    "status_code": 503,
    "latency_ms": 87,
    "response_excerpt": "Service Unavailable",
    "error": "HTTP 503",
}
_SUCCEEDED_ATTEMPT: JsonDict = {
    "attempted_at": "2025-11-25T09:31:18.040000Z",
    "outcome": "success",
    "status_code": 200,
    "latency_ms": 42,
    "response_excerpt": "ok",
    "error": None,
}
_DELIVERY_OUT: JsonDict = {
    "id": _DELIVERY_ID,
    "endpoint_id": _ENDPOINT_ID,
    "event_id": _EVENT_ID,
    "event_type": "customer.updated",
    "customer_id": "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f",
    "status": "succeeded",
    "attempts": 2,
    "next_attempt_at": None,
    "last_attempt_at": "2025-11-25T09:31:18.040000Z",
    "last_status_code": 200,
    "last_error": None,
    "delivered_at": "2025-11-25T09:31:18.040000Z",
    "created_at": "2025-11-25T09:31:12.400000Z",
    "attempt_log": [_SUCCEEDED_ATTEMPT, _FAILED_ATTEMPT],
}


class WebhookAttemptOut(OutputModel):
    """One HTTP attempt of a delivery, as the receiver answered it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUCCEEDED_ATTEMPT]})

    attempted_at: datetime
    outcome: WebhookAttemptOutcome = Field(
        description="`success` (a 2xx answer), `http_error` (any other status), `timeout` (no "
        "answer within 15 s), `connection_error`, `redirect` (3xx, never followed), `refused` "
        "(not a target Kehu delivers to, such as an internal address)."
    )
    status_code: int | None = Field(description="The receiver's HTTP status; null without one.")
    latency_ms: int = Field(description="From sending the request to its answer (or failure).")
    response_excerpt: str | None = Field(
        description="The start of the receiver's answer (at most 1 KiB); a signing secret in it "
        "shows as `[secret]`."
    )
    error: str | None = Field(description="Why the attempt failed; null on success.")


class WebhookDeliveryOut(OutputModel):
    """One event for one endpoint, sent until it succeeds or its retries run out."""

    model_config = ConfigDict(json_schema_extra={"examples": [_DELIVERY_OUT]})

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: str = Field(examples=["customer.updated"])
    customer_id: uuid.UUID | None
    status: WebhookDeliveryStatus = Field(
        description="`pending` (waiting for its next attempt, or being sent), `succeeded`, "
        "`failed` (retries spent, or the endpoint answered 410 Gone), `cancelled` (the endpoint "
        "was removed before it was sent)."
    )
    attempts: int = Field(
        description="Attempts in the current schedule: a retry or replay of a finished delivery "
        "starts a fresh one from 0 (`attempt_log` keeps the earlier attempts)."
    )
    next_attempt_at: datetime | None = Field(
        description="When it is next sent; null unless `pending`."
    )
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None = Field(description="When an attempt succeeded.")
    created_at: datetime
    attempt_log: list[WebhookAttemptOut] = Field(
        default_factory=list,
        description=f"The last {ATTEMPT_LOG_LENGTH} attempts, newest first.",
    )


class WebhookDeliveryFilter(BaseModel):
    """Which deliveries a list returns: every filter is optional, and all given must hold."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    endpoint_id: uuid.UUID | None = Field(default=None, description="Deliveries to this endpoint.")
    status: WebhookDeliveryStatus | None = None
    event_id: uuid.UUID | None = Field(default=None, description="Deliveries of this event.")


MAX_REPLAY_IDS = 1000
MAX_REPLAY_RANGE = timedelta(days=31)
# More events than this in one replay is refused: replay a shorter range.
MAX_REPLAY_EVENTS = 100_000


def _utc(value: datetime | None) -> datetime | None:
    try:
        return None if value is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of range") from None


class WebhookReplay(InputModel):
    """Send events of the event log to an endpoint again: the events named in `event_ids`, or
    those that occurred in [`from`, `to`), that the endpoint's `event_types` match."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "endpoint_id": _ENDPOINT_ID,
                    "from": "2025-11-24T00:00:00Z",
                    "to": "2025-11-25T00:00:00Z",
                },
                {"endpoint_id": _ENDPOINT_ID, "event_ids": [_EVENT_ID]},
            ]
        },
    )

    endpoint_id: uuid.UUID
    event_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REPLAY_IDS,
        description=f"Up to {MAX_REPLAY_IDS:,} event ids; or give `from` and `to`.",
    )
    from_: Annotated[AwareDatetime | None, AfterValidator(_utc)] = Field(
        default=None,
        alias="from",
        description="Events that occurred at or after this time (with `to`; at most 31 days).",
    )
    to: Annotated[AwareDatetime | None, AfterValidator(_utc)] = Field(
        default=None, description="Events that occurred before this time (with `from`)."
    )

    @field_validator("event_ids")
    @classmethod
    def _unique(cls, value: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
        return None if value is None else list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _one_selection(self) -> Self:
        start, end = self.from_, self.to
        has_range = start is not None or end is not None
        if self.event_ids is not None and has_range:
            raise field_error(
                "event_ids", "give either `event_ids` or `from` and `to`, not both", None
            )
        if self.event_ids is None and not has_range:
            raise field_error("event_ids", "give `event_ids`, or `from` and `to`", None)
        if start is None and end is not None:
            raise field_error("from", "a time range needs both `from` and `to`", None)
        if end is None and start is not None:
            raise field_error("to", "a time range needs both `from` and `to`", None)
        if start is not None and end is not None:
            if end <= start:
                raise field_error("to", "must be after `from`", None)
            if end - start > MAX_REPLAY_RANGE:
                raise field_error(
                    "to", f"the range is longer than {MAX_REPLAY_RANGE.days} days", None
                )
        return self


class WebhookReplayResult(OutputModel):
    """What a replay queued."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"queued": 120, "new": 118, "requeued": 2}]}
    )

    queued: int = Field(
        description="Deliveries now waiting to be sent: one per matching event (`new` + "
        "`requeued`)."
    )
    new: int = Field(description="New deliveries (the endpoint had none of the event).")
    requeued: int = Field(
        description="Existing deliveries of the same events, back to `pending` (or, if still "
        "pending, due now): replaying again never queues an event twice."
    )
