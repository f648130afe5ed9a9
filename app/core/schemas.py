"""Building blocks for every domain's pydantic schemas."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints


def _no_nul(value: str) -> str:
    # PostgreSQL text and jsonb cannot store U+0000; refuse it up front with a field error.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


def no_nul_anywhere(value: object) -> object:
    """Walk a JSON value and refuse U+0000 in any string, key or value."""
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            no_nul_anywhere(item)
    elif isinstance(value, list):
        for item in value:
            no_nul_anywhere(item)
    return value


ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_nul),
]
LongText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=10_000),
    AfterValidator(_no_nul),
]


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
