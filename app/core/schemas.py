"""Building blocks for every domain's pydantic schemas."""

import copy
import json
import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from types import UnionType
from typing import Annotated, Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

# Deeper than any body Kehu accepts needs; bounds every walk over client JSON.
MAX_JSON_DEPTH = 32
Loc = tuple[str | int, ...]


def no_nul(value: str) -> str:
    # PostgreSQL text and jsonb cannot store U+0000; refuse it up front with a field error.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


def _string_problem(value: str, allow_nul: bool = False) -> str | None:
    if not allow_nul and "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain a lone surrogate (U+D800 to U+DFFF); send valid UTF-8"
    return None


def safe_text(value: str) -> str:
    """A client's string as printable ASCII (JSON escapes), fit for an error message or location."""
    return json.dumps(value)[1:-1]


def hostile_json(
    value: Any, loc: Loc = (), *, allow_nul: bool = False, allow_non_finite: bool = False
) -> tuple[Loc, str] | None:
    """The first thing in a parsed JSON value that no stored field can hold, with where it is:
    a NUL character or lone surrogate in a string or key, a non-finite number (NaN, Infinity, or
    a literal like 1e400 that overflows), or nesting deeper than ``MAX_JSON_DEPTH``. Iterative, so
    any depth is safe to walk. ``allow_*`` leave those checks to validators further on."""
    stack: list[tuple[Any, Loc, int]] = [(value, loc, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = _string_problem(item, allow_nul)
            if problem is not None:
                return where, problem
        elif isinstance(item, float):
            if not allow_non_finite and not math.isfinite(item):
                return where, "must be a finite number (not NaN or Infinity)"
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return where, f"is nested more than {MAX_JSON_DEPTH} levels deep"
            if isinstance(item, list):
                stack.extend(
                    (v, (*where, i), depth + 1) for i, v in reversed(list(enumerate(item)))
                )
                continue
            children = []
            for key, child in item.items():
                if (
                    isinstance(key, str)
                    and (problem := _string_problem(key, allow_nul)) is not None
                ):
                    return (*where, safe_text(key)), f"key {problem}"
                children.append((child, (*where, str(key)), depth + 1))
            stack.extend(reversed(children))
    return None


# Set while validating data that ``app.core.http.load_json_body`` found plain (``json_checked``).
_json_checked: ContextVar[bool] = ContextVar("json_checked", default=False)


@contextmanager
def json_checked(checked: bool) -> Iterator[None]:
    """Validate input models inside this block without their hostile-JSON walk when ``checked``:
    only for data parsed from a body ``app.core.http.load_json_body`` found plain."""
    token = _json_checked.set(checked)
    try:
        yield
    finally:
        _json_checked.reset(token)


def field_error(loc: str | Sequence[str | int], message: str, value: Any = None) -> ValidationError:
    """A validation error located at a field, for validators that check several fields at once
    (a model validator's own errors are otherwise located at the whole body). Raise it from any
    validator: pydantic prefixes the location with where the model sits (``body.phone``)."""
    where = (loc,) if isinstance(loc, str) else tuple(loc)
    return ValidationError.from_exception_data(
        "Input",
        [
            InitErrorDetails(
                type=PydanticCustomError(
                    "value_error", "Value error, {reason}", {"reason": message}
                ),
                loc=where,
                input=value,
            )
        ],
    )


# Marks a field as personal data (``Field(json_schema_extra=PII)``): null in reads and events for
# keys without the pii:read scope, and listed as ``x-pii`` in the OpenAPI document.
PII: dict[str, Any] = {"x-pii": True}


_declared_pii: set[str] = set()


def pii_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` marked ``PII`` (also remembered for ``declared_pii``)."""
    found = frozenset(
        name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("x-pii")
    )
    _declared_pii.update(found)
    return found


def declared_pii() -> frozenset[str]:
    """Every field name any domain's schema marks as PII: what the event feed redacts in event
    data without pii:read (events carry their subject's fields by name)."""
    return frozenset(_declared_pii)


ShortText = Annotated[
    str,
    # The pattern tells the OpenAPI schema what stripping enforces: not only whitespace.
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"\S"),
    AfterValidator(no_nul),
]
LongText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=10_000),
    AfterValidator(no_nul),
]


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error, so typos do not pass silently; and no string,
    key or number that PostgreSQL or JSON cannot hold gets past validation (see ``hostile_json``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # Fields whose raw contents are checked later, by a model of their own (each batch item is
    # checked and reported on its own, so one bad item does not fail the others).
    checked_later: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_hostile_json(cls, data: Any) -> Any:
        if isinstance(data, dict) and not _json_checked.get():
            checked = data
            if cls.checked_later:
                checked = {k: v for k, v in data.items() if k not in cls.checked_later}
            found = hostile_json(checked)
            if found is not None:
                loc, message = found
                raise field_error(loc, message)
        return data


class OutputModel(BaseModel):
    """Response bodies. A response always carries every field, defaults included, so the OpenAPI
    document marks them all required (and keeps the nulls of examples)."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    @classmethod
    def from_stored(cls, values: Mapping[Any, Any]) -> Self:
        """An instance from values that were validated on their way in (a row Kehu stored, or a
        model's own dump): typed as the fields declare (enums, nested output models, times and
        ids that a JSON column holds as text), defaults
        for the fields not given, and no validator run again. ``model_validate`` of a stored
        customer re-ran every input rule on every field, ~6 % of a REST read's CPU; the tests
        check both give the same instance for stored data."""
        plan = _STORED_PLANS.get(cls) or _stored_plan(cls)
        data: dict[str, Any] = {}
        for name, convert, default in plan:
            if name in values:
                value = values[name]
                data[name] = value if convert is None or value is None else convert(value)
            elif default is _REQUIRED:
                raise KeyError(f"{cls.__name__}.from_stored: no value for {name!r}")
            else:
                data[name] = default()
        instance = cls.__new__(cls)
        object.__setattr__(instance, "__dict__", data)
        object.__setattr__(instance, "__pydantic_fields_set__", set(data))
        object.__setattr__(instance, "__pydantic_extra__", None)
        object.__setattr__(instance, "__pydantic_private__", None)
        return instance


_REQUIRED = object()
_FROM_JSON_TEXT: dict[Any, Callable[[str], Any]] = {
    datetime: datetime.fromisoformat,
    date: date.fromisoformat,
    uuid.UUID: uuid.UUID,
}
_Converter = Callable[[Any], Any] | None
_STORED_PLANS: dict[type[OutputModel], list[tuple[str, _Converter, Any]]] = {}


def _converter(annotation: Any) -> _Converter:
    """How a stored value becomes the field's type: enums and output models are rebuilt, lists
    of them item by item; anything else is stored as the field holds it."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _converter(args[0])
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation
    if annotation in _FROM_JSON_TEXT:  # inside a JSON column they are stored as text
        parse = _FROM_JSON_TEXT[annotation]
        return lambda value: parse(value) if isinstance(value, str) else value
    if isinstance(annotation, type) and issubclass(annotation, OutputModel):
        return annotation.from_stored
    if get_origin(annotation) is list and len(args) == 1:
        item = _converter(args[0])
        return None if item is None else lambda values: [item(v) for v in values]
    return None


def _stored_plan(cls: type[OutputModel]) -> list[tuple[str, _Converter, Any]]:
    plan = []
    for name, field in cls.model_fields.items():
        if field.default_factory is not None:
            default: Any = field.default_factory
        elif field.is_required():
            default = _REQUIRED
        else:
            default = lambda value=field.default: copy.copy(value)  # noqa: E731
        plan.append((name, _converter(field.annotation), default))
    _STORED_PLANS[cls] = plan
    return plan


# ------------------------------------------------------------------------------------------- money

# A money amount as JSON carries it: a decimal string, at most 12 integer digits and 2 decimals
# (what Numeric(14, 2) holds), never a float.
MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"


def _two_decimals(value: str) -> str:
    # As f"{Decimal(value):.2f}" for what MONEY_PATTERN lets through, in a third of the time (a
    # batch of orders has thousands of amounts).
    whole, _, cents = value.partition(".")
    return f"{whole.lstrip('0') or '0'}.{cents.ljust(2, '0')}"


Amount = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=MONEY_PATTERN),
    AfterValidator(_two_decimals),
]


class Money(BaseModel):
    """An amount in a currency. The currency must be the service's (``KEHU_CURRENCY``): a service
    that stores money checks it (422 ``currency_not_supported``), so revenue is never summed across
    currencies."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"amount": "199.00", "currency": "CNY"}]},
    )

    amount: Amount = Field(
        description='A decimal string with at most 2 decimals, "0" to "999999999999.99"; '
        'answered with exactly 2 ("199.00").'
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. `CNY`.")

    @property
    def value(self) -> Decimal:
        return Decimal(self.amount)

    @classmethod
    def of(cls, value: Decimal, currency: str) -> "Money":
        """A stored amount (already within the limits) as Money, without validation (as
        ``OutputModel.from_stored``: a batch of orders builds thousands)."""
        instance = cls.__new__(cls)
        object.__setattr__(instance, "__dict__", {"amount": f"{value:.2f}", "currency": currency})
        object.__setattr__(instance, "__pydantic_fields_set__", {"amount", "currency"})
        object.__setattr__(instance, "__pydantic_extra__", None)
        object.__setattr__(instance, "__pydantic_private__", None)
        return instance
