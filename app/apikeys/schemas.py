import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from app.core.auth import SCOPES, unknown_scopes
from app.core.schemas import InputModel, OutputModel, ShortText

# A scope name: an enum in the OpenAPI document. Checked by the validator below rather than by a
# Literal, so an unknown scope's message lists the known ones.
ScopeName = Annotated[str, Field(json_schema_extra={"enum": list(SCOPES)})]
_SCOPES_DOC = "\n".join(f"- `{name}`: {meaning}" for name, meaning in SCOPES.items())

_KEY_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
_KEY_OUT: JsonDict = {
    "id": _KEY_ID,
    "name": "shop-frontend",
    "prefix": "kehu_Xy3kQ9",
    "scopes": ["customers:read"],
    "created_at": "2025-11-25T09:30:00Z",
    "revoked_at": None,
}


class ApiKeyCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "shop-frontend", "scopes": ["customers:read"]},
                {"name": "crm-sync", "scopes": ["customers:write", "pii:read", "events:read"]},
            ]
        }
    )

    name: ShortText = Field(description="What the key is for, e.g. `shop-frontend`.")
    scopes: list[ScopeName] = Field(
        min_length=1,
        max_length=len(SCOPES),
        description=f"Scopes granted to the key:\n{_SCOPES_DOC}",
    )

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = unknown_scopes(scopes)
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
        return sorted(set(scopes))


class ApiKeyOut(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_KEY_OUT]})

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The first characters of the key, to tell keys apart.")
    scopes: list[ScopeName]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_KEY_OUT, "key": "kehu_Xy3kQ9v1bN0m8tR2sLq4wE6yU7iO5pA3dF9gH1jK2lZ"}]
        }
    )

    key: str = Field(description="The key itself. Shown this once; store it now.")
