"""The generated contracts (OpenAPI and GraphQL SDL), produced from the code by `kehu openapi`."""

from typing import Any

from app.core.config import Settings


def openapi_document() -> dict[str, Any]:
    from app.main import create_app

    return create_app(Settings()).openapi()


def graphql_sdl() -> str:
    from app.api.graphql.schema import build_schema

    return build_schema(Settings()).as_str() + "\n"
