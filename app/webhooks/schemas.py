"""Webhook endpoints: the one declaration of their shape (REST bodies and answers, GraphQL)."""

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, field_validator
from pydantic.config import JsonDict

from app.core.schemas import InputModel, OutputModel, no_nul
from app.events.schemas import EVENT_TYPES, type_pattern_matches

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
_ENDPOINT_OUT: JsonDict = {
    "id": _ENDPOINT_ID,
    "url": "https://partner.example.com/kehu/webhooks",
    "description": "Shop: customer sync",
    "event_types": ["customer.*"],
    "enabled": True,
    "metadata": {"team": "shop"},
    "include_pii": False,
    "disabled_reason": None,
    "previous_secret_expires_at": None,
    "version": 1,
    "created_at": "2025-11-25T09:30:00Z",
    "updated_at": "2025-11-25T09:30:00Z",
}
_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


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


class WebhookEndpointOut(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ENDPOINT_OUT]})

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    metadata: dict[str, str]
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
