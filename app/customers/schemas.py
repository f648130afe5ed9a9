"""The customer's shape, declared once.

``CustomerFields`` names every field a client sets, with its type, limits, description and whether it
is PII; the REST bodies (``CustomerCreate``, ``CustomerUpdate``, batch items), the REST and GraphQL
output (``CustomerOut``), the GraphQL input types, the event snapshot and the redaction list are all
built from it. Adding a profile field means: the column in ``models.py``, its migration, and one
line here.
"""

import json
import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from app.core import clock
from app.core.countries import ISO_3166_ALPHA2
from app.core.emails import normalized_email
from app.core.schemas import (
    PII,
    InputModel,
    LongText,
    OutputModel,
    ShortText,
    field_error,
    no_nul,
    pii_fields,
)


class Gender(StrEnum):
    female = "female"
    male = "male"
    non_binary = "non_binary"
    other = "other"
    unknown = "unknown"


class IncomeBand(StrEnum):
    low = "low"
    lower_middle = "lower_middle"
    middle = "middle"
    upper_middle = "upper_middle"
    high = "high"


class Education(StrEnum):
    primary = "primary"
    secondary = "secondary"
    vocational = "vocational"
    bachelor = "bachelor"
    master = "master"
    doctorate = "doctorate"
    other = "other"


class ConsentChannel(StrEnum):
    email = "email"
    sms = "sms"
    phone = "phone"
    wechat = "wechat"
    push = "push"
    post = "post"
    whatsapp = "whatsapp"


class ConsentPurpose(StrEnum):
    marketing = "marketing"
    service = "service"
    analytics = "analytics"
    profiling = "profiling"
    third_party = "third_party"


class ConsentStatus(StrEnum):
    granted = "granted"
    denied = "denied"


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
        if not ATTRIBUTE_KEY.fullmatch(key):
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
# Checked (and lower-cased) by ``normalized_email`` on input only: a stored email is already valid,
# and checking one costs up to ~85 µs (email-validator), twelve times the rest of a customer.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 320}),
]
# How a channel is named: the column holds 40 characters.
ChannelName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"\S"),
]


# Examples for the OpenAPI document (every one is validated by its model in the tests).
_CUSTOMER_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
_CONSENT_IN: JsonDict = {
    "channel": "email",
    "purpose": "marketing",
    "status": "granted",
    "source": "web-form",
    "updated_at": "2025-11-25T09:30:00Z",
}
_CREATE: JsonDict = {
    "external_id": "shop-10042",
    "email": "wang.wei@example.com",
    "phone": "13800138000",
    "first_name": "伟",
    "last_name": "王",
    "gender": "male",
    "birth_date": "1988-04-12",
    "locale": "zh-CN",
    "country": "CN",
    "region": "Shanghai",
    "city": "Shanghai",
    "income_band": "upper_middle",
    "education": "bachelor",
    "occupation": "Product manager",
    "tags": ["outdoor", "coffee"],
    "attributes": {"shoe_size": 42, "vip": True},
    "consent": [{"channel": "email", "purpose": "marketing", "status": "granted"}],
    "source_channel": "wechat",
    "owner": "li.na",
    "notes": "Prefers contact after 18:00.",
}
_CREATE_MINIMAL: JsonDict = {
    "email": "anna.schmidt@example.de",
    "first_name": "Anna",
    "country": "DE",
    "locale": "de-DE",
}
_OUT: JsonDict = {
    **_CREATE,
    "id": _CUSTOMER_ID,
    "phone": "+8613800138000",
    "consent": [{**_CONSENT_IN, "source": None}],
    "version": 1,
    "created_at": "2025-11-25T09:30:00Z",
    "updated_at": "2025-11-25T09:30:00Z",
    "redacted_fields": [],
}


class Consent(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _CONSENT_IN,
                {"channel": "sms", "purpose": "marketing", "status": "denied"},
            ]
        }
    )

    channel: ConsentChannel
    purpose: ConsentPurpose
    status: ConsentStatus
    source: ShortText | None = Field(
        default=None, description="Where it was given, e.g. `web-form`."
    )
    updated_at: datetime | None = Field(
        default=None, description="When the customer gave or withdrew it (default: now)."
    )


PII_NOTE = "Null without the pii:read scope (listed in `redacted_fields`)."


class CustomerFields(BaseModel):
    """Every field a client sets on a customer (see the module docstring)."""

    external_id: ExternalId | None = Field(
        default=None, description="Your system's id; unique among live customers."
    )
    email: Email | None = Field(
        default=None, description="Stored lower-cased; unique. " + PII_NOTE, json_schema_extra=PII
    )
    phone: Phone | None = Field(
        default=None,
        description="E.164 (`+8613800138000`), or national form with `country`. " + PII_NOTE,
        json_schema_extra=PII,
    )
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    gender: Gender | None = None
    birth_date: BirthDate | None = Field(default=None, description=PII_NOTE, json_schema_extra=PII)
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
    source_channel: ChannelName | None = Field(default=None, description="How the customer came.")
    owner: ShortText | None = Field(default=None, description="The responsible account owner.")
    notes: LongText | None = None

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


class _InputRules(InputModel):
    """What a client's value must pass beyond its declared type; stored values already did."""

    @field_validator("email", check_fields=False)
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        # Raises the same error as EmailStr ("value is not a valid email address: ...").
        return None if value is None else normalized_email(value)


class CustomerCreate(CustomerFields, _InputRules):
    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE, _CREATE_MINIMAL]})

    @model_validator(mode="after")
    def _normalize(self) -> "CustomerCreate":
        if self.phone is not None:
            self.phone = _normalized_phone(self.phone, self.country)
        if not any((self.external_id, self.email, self.phone, self.first_name, self.last_name)):
            raise ValueError(
                "a customer needs at least one of external_id, email, phone, first_name, last_name"
            )
        return self


class CustomerUpdate(CustomerFields, _InputRules):
    """PATCH body: only the fields given change; null clears a field. `attributes` merges by key
    (a null value removes that key); `consent` entries replace the same (channel, purpose).
    A national-format phone without `country` is read in the stored country (by the service)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"city": "Hangzhou"},
                {
                    "phone": "+8613900139000",
                    "notes": None,
                    "attributes": {"vip": None, "loyalty_level": "gold"},
                    "consent": [{"channel": "sms", "purpose": "marketing", "status": "denied"}],
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _normalize(self) -> "CustomerUpdate":
        if self.phone is not None and (self.phone.startswith("+") or self.country is not None):
            self.phone = _normalized_phone(self.phone, self.country)
        return self


class ConsentOut(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CONSENT_IN]})

    channel: ConsentChannel
    purpose: ConsentPurpose
    status: ConsentStatus
    source: str | None = None
    updated_at: datetime


class CustomerOut(CustomerFields, OutputModel):
    """A customer as stored, or (``redacted_fields`` not empty) as a key without pii:read sees it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _OUT,
                # As a key without pii:read sees the same customer.
                {
                    **_OUT,
                    "email": None,
                    "phone": None,
                    "birth_date": None,
                    "redacted_fields": ["birth_date", "email", "phone"],
                },
            ]
        },
    )

    id: uuid.UUID
    # What the store always has, where a body may leave it out.
    tags: list[str] = Field(default_factory=list, description="Psychographic and interest tags.")
    attributes: dict[str, Any] = Field(default_factory=dict, description="Custom fields.")
    consent: list[ConsentOut] = Field(  # type: ignore[assignment]  # stored entries have a time
        default_factory=list, description="Consent per channel and purpose."
    )
    version: int = Field(description="Increases on every change; the ETag is built from it.")
    created_at: datetime
    updated_at: datetime
    redacted_fields: list[str] = Field(
        default_factory=list,
        description="The PII fields that have a value but are null here because the API key "
        "lacks the pii:read scope; empty when nothing is hidden.",
    )


# The fields pii:read unlocks, from the declarations above.
CUSTOMER_PII = pii_fields(CustomerFields)
# What a stored customer has that a client cannot set; with CustomerFields, the columns to read.
STORED_FIELDS = (*CustomerFields.model_fields, "id", "version", "created_at", "updated_at")


class CustomerSort(StrEnum):
    """A sort order: the field, `-` first for descending."""

    created_at = "created_at"
    created_at_desc = "-created_at"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"


FilterText = Annotated[str, StringConstraints(min_length=1, max_length=320), AfterValidator(no_nul)]


class CustomerFilter(BaseModel):
    """Which customers a list returns: every filter is optional, and all given must hold.

    REST takes these as query parameters (``tag`` repeated, ranges as ``created_at[gte]``); GraphQL
    as the ``filter`` input of ``customers``. Filters on PII fields need the pii:read scope.
    """

    # REST hands every query parameter to this model (limit, cursor, sort too); the request
    # pipeline has already refused names no operation parameter declares.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00]*$",
        description="Fuzzy search on name, email and phone (trigram; works for Chinese names); "
        "on names only without the pii:read scope.",
    )
    email: FilterText | None = Field(
        default=None,
        description="Exact email; needs the pii:read scope (403 `pii_read_required`).",
        json_schema_extra=PII,
    )
    phone: FilterText | None = Field(
        default=None,
        description="Exact E.164 phone; needs the pii:read scope (403 `pii_read_required`).",
        json_schema_extra=PII,
    )
    external_id: FilterText | None = None
    country: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2."
    )
    region: FilterText | None = None
    city: FilterText | None = None
    tag: list[FilterText] | None = Field(
        default=None,
        max_length=20,
        description="Customers having all these tags (REST: repeat the parameter).",
    )
    owner: FilterText | None = None
    source_channel: FilterText | None = None
    created_at_gte: datetime | None = Field(default=None, alias="created_at[gte]")
    created_at_lte: datetime | None = Field(default=None, alias="created_at[lte]")
    updated_at_gte: datetime | None = Field(default=None, alias="updated_at[gte]")
    updated_at_lte: datetime | None = Field(default=None, alias="updated_at[lte]")

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None

    @field_validator("tag")
    @classmethod
    def _lower_tags(cls, value: list[str] | None) -> list[str] | None:
        return [t.lower() for t in value] if value is not None else None

    def uses_pii(self) -> bool:
        return any(getattr(self, name) is not None for name in pii_fields(CustomerFilter))


class CustomerBatchItem(CustomerCreate):
    """An upsert: matched by `external_id` if given, else by `email`; otherwise created."""


class CustomerBatch(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "external_id": "shop-10042",
                            "email": "wang.wei@example.com",
                            "first_name": "伟",
                            "last_name": "王",
                            "tags": ["outdoor"],
                        },
                        {"external_id": "shop-10044", "email": "not-an-email"},
                    ]
                }
            ]
        }
    )

    checked_later = frozenset({"items"})  # each item is validated, and reported, on its own

    items: list[dict[str, Any]] = Field(
        min_length=1, max_length=1000, description="Up to 1,000 customers, each a customer body."
    )


BatchStatus = Literal["created", "updated", "unchanged"]


_CREATED_ITEM: JsonDict = {"index": 0, "status": "created", "id": _CUSTOMER_ID, "error": None}
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
                "field": "email",
                "message": "value is not a valid email address: An email address must have "
                "an @-sign.",
            }
        ],
    },
}


class BatchItemResult(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CREATED_ITEM, _FAILED_ITEM]})

    index: int
    status: Literal["created", "updated", "unchanged", "error"]
    id: uuid.UUID | None = None
    error: dict[str, Any] | None = Field(
        default=None, description="A problem object for this item when status is `error`."
    )


class CustomerBatchResult(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [_CREATED_ITEM, _FAILED_ITEM],
                    "created": 1,
                    "updated": 0,
                    "unchanged": 0,
                    "errors": 1,
                }
            ]
        }
    )

    results: list[BatchItemResult]
    created: int
    updated: int
    unchanged: int
    errors: int
