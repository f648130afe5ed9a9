"""Fields one domain adds to another's GraphQL type (``Domain.graphql_type_fields``): the
customer's interactions, cases, feedback and timeline are declared by those domains, so the
customers package names none of them.

A field is a plain resolver whose first parameter, ``root``, is the object of the extended type;
``build_schema`` appends it to the generated type before the schema is made.
"""

from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField

from app.api.graphql.pydantic_types import node_types


def type_field(name: str, resolver: Callable[..., Any], *, description: str) -> StrawberryField:
    """A field ``name`` for another domain's type, resolved by ``resolver(root, ...)``."""
    field: StrawberryField = strawberry.field(resolver=resolver, description=description)
    field.python_name = name
    return field


def extend_types(extensions: Iterable[tuple[str, StrawberryField]]) -> None:
    """Add each ``(type name, field)`` to that node type (once: schemas are built per app)."""
    for type_name, field in extensions:
        cls = node_types.get(type_name)
        if cls is None:
            raise RuntimeError(
                f"No GraphQL node type {type_name!r} to add {field.python_name!r} to."
            )
        definition = get_object_definition(cls, strict=True)
        existing = {f.python_name: f for f in definition.fields}
        if field.python_name in existing:
            if existing[field.python_name] is not field:
                raise RuntimeError(f"{type_name}.{field.python_name} is declared twice.")
            continue
        field.origin = cls
        definition.fields.append(field)
