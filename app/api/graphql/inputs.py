"""GraphQL arguments checked by the same pydantic models as REST bodies and query parameters."""

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.api.graphql.errors import invalid_input

ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], data: dict[str, Any], prefix: str = "input") -> ModelT:
    """``data`` validated by ``model``; a ``ValidationFailed`` with camelCase field paths under
    ``prefix`` (``input.firstName``) when it is not valid."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, prefix) from None
