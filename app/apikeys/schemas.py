import uuid
from datetime import datetime

from pydantic import Field, field_validator

from app.core.auth import SCOPES, unknown_scopes
from app.core.schemas import InputModel, OutputModel, ShortText


class ApiKeyCreate(InputModel):
    name: ShortText = Field(description="What the key is for, e.g. `shop-frontend`.")
    scopes: list[str] = Field(
        min_length=1,
        max_length=len(SCOPES),
        description="Scopes granted to the key.",
        json_schema_extra={"items": {"type": "string", "enum": list(SCOPES)}},
    )

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = unknown_scopes(scopes)
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
        return sorted(set(scopes))


class ApiKeyOut(OutputModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The first characters of the key, to tell keys apart.")
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. Shown this once; store it now.")
