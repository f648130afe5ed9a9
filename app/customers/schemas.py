import json
import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.core import clock
from app.core.countries import ISO_3166_ALPHA2
from app.core.schemas import (
    InputModel,
    LongText,
    OutputModel,
    ShortText,
    field_error,
)

Gender = Literal["female", "male", "non_binary", "other", "unknown"]
IncomeBand = Literal["low", "lower_middle", "middle", "upper_middle", "high"]
Education = Literal[
    "primary", "secondary", "vocational", "bachelor", "master", "doctorate", "other"
]
ConsentChannel = Literal["email", "sms", "phone", "wechat", "push", "post", "whatsapp"]
ConsentPurpose = Literal["marketing", "service", "analytics", "profiling", "third_party"]
ConsentStatus = Literal["granted", "denied"]

ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_ATTRIBUTES = 100
# The whole attributes object, as stored JSON: keeps one profile from growing without bound.
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_ATTRIBUTE_TEXT = 2_000
MAX_TAGS = 100


def _country(value: str) -> str:
    upper = value.upper()
    if upper not in ISO_3166_ALPHA2:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. CN or DE")
    return upper


def _tag(value: str) -> str:
    return value.lower()


def _locale(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", value):
        raise ValueError("must be a BCP 47 language tag, e.g. zh-CN or en")
    return value


def _birth_date(value: date) -> date:
    if value < date(1900, 1, 1) or value > clock.now().date():
        raise ValueError("must be between 1900-01-01 and today")
    return value


def normalize_phone(value: str, country: str | None) -> str:
    """E.164, reading national numbers in the customer's country."""
    try:
        parsed = phonenumbers.parse(value, country if not value.startswith("+") else None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(
            "must be a phone number in E.164 (+8613800138000) or national form with a country"
        ) from exc
    if not phonenumbers.is_possible_number(parsed) or not phonenumbers.is_valid_number(parsed):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_attribute_totals(value: dict[str, Any]) -> None:
    """The limits on the whole object; PATCH checks them again on the merged result."""
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES_BYTES // 1024} KiB of attributes in all")


def _attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    for key, item in value.items():
        if not ATTRIBUTE_KEY.match(key):
            raise ValueError(f"key {key!r} must match {ATTRIBUTE_KEY.pattern}")
        scalars = item if isinstance(item, list) else [item]
        if isinstance(item, list) and len(item) > 100:
            raise ValueError(f"{key}: at most 100 list items")
        for scalar in scalars:
            if scalar is not None and not isinstance(scalar, str | int | float | bool):
                raise ValueError(f"{key}: values are strings, numbers, booleans or lists of them")
            if isinstance(scalar, str) and len(scalar) > MAX_ATTRIBUTE_TEXT:
                raise ValueError(f"{key}: strings are at most {MAX_ATTRIBUTE_TEXT} characters")
            if isinstance(scalar, int) and not isinstance(scalar, bool) and abs(scalar) > 2**53:
                raise ValueError(f"{key}: integers must fit in ±2^53")
            if isinstance(scalar, float) and scalar != scalar:
                raise ValueError(f"{key}: NaN is not allowed")
    check_attribute_totals(value)
    return value


Country = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_country)]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_tag),
]
Locale = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=35), AfterValidator(_locale)
]
BirthDate = Annotated[date, AfterValidator(_birth_date)]
Attributes = Annotated[dict[str, Any], AfterValidator(_attributes)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=40)]
ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]+$"),
]


class Consent(InputModel):
    channel: ConsentChannel
    purpose: ConsentPurpose
    status: ConsentStatus
    source: ShortText | None = Field(
        default=None, description="Where it was given, e.g. `web-form`."
    )
    updated_at: datetime | None = Field(
        default=None, description="When the customer gave or withdrew it (default: now)."
    )


class _ProfileFields(InputModel):
    external_id: ExternalId | None = Field(
        default=None, description="Your system's id; unique among live customers."
    )
    email: EmailStr | None = Field(default=None, description="Stored lower-cased; unique.")
    phone: Phone | None = Field(
        default=None, description="E.164 (`+8613800138000`), or national form with `country`."
    )
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    gender: Gender | None = None
    birth_date: BirthDate | None = None
    locale: Locale | None = Field(default=None, description="BCP 47, e.g. `zh-CN`.")
    country: Country | None = Field(default=None, description="ISO 3166-1 alpha-2.")
    region: ShortText | None = None
    city: ShortText | None = None
    income_band: IncomeBand | None = None
    education: Education | None = None
    occupation: ShortText | None = None
    tags: list[Tag] | None = Field(
        default=None, max_length=MAX_TAGS, description="Psychographic and interest tags."
    )
    attributes: Attributes | None = Field(
        default=None,
        description="Custom fields: keys `^[a-z][a-z0-9_]{0,63}$`, values scalars or lists.",
    )
    consent: list[Consent] | None = Field(
        default=None, max_length=50, description="Consent per channel and purpose."
    )
    source_channel: ShortText | None = Field(default=None, description="How the customer came.")
    owner: ShortText | None = Field(default=None, description="The responsible account owner.")
    notes: LongText | None = None

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @field_validator("tags")
    @classmethod
    def _dedupe_tags(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None

    @field_validator("consent")
    @classmethod
    def _one_per_pair(cls, value: list[Consent] | None) -> list[Consent] | None:
        if value is not None:
            pairs = [(c.channel, c.purpose) for c in value]
            if len(pairs) != len(set(pairs)):
                raise ValueError("one entry per (channel, purpose)")
        return value


def _normalized_phone(phone: str, country: str | None) -> str:
    try:
        return normalize_phone(phone, country)
    except ValueError as exc:
        raise field_error("phone", str(exc), phone) from None


class CustomerCreate(_ProfileFields):
    @model_validator(mode="after")
    def _normalize(self) -> "CustomerCreate":
        if self.phone is not None:
            self.phone = _normalized_phone(self.phone, self.country)
        if not any((self.external_id, self.email, self.phone, self.first_name, self.last_name)):
            raise ValueError(
                "a customer needs at least one of external_id, email, phone, first_name, last_name"
            )
        return self


class CustomerUpdate(_ProfileFields):
    """PATCH body: only the fields given change; null clears a field. `attributes` merges by key
    (a null value removes that key); `consent` entries replace the same (channel, purpose).
    A national-format phone without `country` is read in the stored country (by the service)."""

    @model_validator(mode="after")
    def _normalize(self) -> "CustomerUpdate":
        if self.phone is not None and (self.phone.startswith("+") or self.country is not None):
            self.phone = _normalized_phone(self.phone, self.country)
        return self


class ConsentOut(OutputModel):
    channel: str
    purpose: str
    status: str
    source: str | None = None
    updated_at: datetime


PII_NOTE = "Null without the pii:read scope (listed in `redacted_fields`)."
EmailOut = Annotated[str, WithJsonSchema({"type": "string", "format": "email"})]


class CustomerOut(OutputModel):
    id: uuid.UUID
    external_id: str | None
    email: EmailOut | None = Field(description=PII_NOTE)
    phone: str | None = Field(description="E.164. " + PII_NOTE)
    first_name: str | None
    last_name: str | None
    gender: str | None
    birth_date: date | None = Field(description=PII_NOTE)
    locale: str | None
    country: str | None
    region: str | None
    city: str | None
    income_band: str | None
    education: str | None
    occupation: str | None
    tags: list[str]
    attributes: dict[str, Any]
    consent: list[ConsentOut]
    source_channel: str | None
    owner: str | None
    notes: str | None
    version: int = Field(description="Increases on every change; the ETag is built from it.")
    created_at: datetime
    updated_at: datetime
    redacted_fields: list[str] = Field(
        description="The PII fields that have a value but are null here because the API key "
        "lacks the pii:read scope (`email`, `phone`, `birth_date`); empty when nothing is hidden."
    )


class CustomerBatchItem(CustomerCreate):
    """An upsert: matched by `external_id` if given, else by `email`; otherwise created."""


class CustomerBatch(InputModel):
    checked_later = frozenset({"items"})  # each item is validated, and reported, on its own

    items: list[dict[str, Any]] = Field(
        min_length=1, max_length=1000, description="Up to 1,000 customers, each a customer body."
    )


BatchStatus = Literal["created", "updated", "unchanged"]


class BatchItemResult(OutputModel):
    index: int
    status: Literal["created", "updated", "unchanged", "error"]
    id: uuid.UUID | None = None
    error: dict[str, Any] | None = Field(
        default=None, description="A problem object for this item when status is `error`."
    )


class CustomerBatchResult(OutputModel):
    results: list[BatchItemResult]
    created: int
    updated: int
    unchanged: int
    errors: int
