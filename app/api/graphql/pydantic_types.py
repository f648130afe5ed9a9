"""GraphQL object and input types generated from a domain's pydantic schemas.

A field is declared once, in the domain's ``schemas.py``; its GraphQL name (camelCase), type,
nullability and description come from there. Resolvers return the pydantic objects themselves (a
service's ``CustomerOut``), and strawberry reads their attributes, so nothing is copied per request.

- ``object_type(CustomerOut, name="Customer", node=...)``: the output type; with ``node`` it is a
  Relay ``Node`` whose ``id`` is the global id and whose raw UUID is ``customerId``.
- ``input_type(CustomerCreate, name="CustomerCreateInput")``: every field optional and UNSET when
  not sent, so ``provided()`` gives exactly what the client sent, for the same pydantic validation
  as REST (a PATCH-style input tells "not sent" from ``null``).
- Enums (``StrEnum`` in the schemas) become GraphQL enums of the same name and values.
"""

import dataclasses
import types
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

import strawberry
from pydantic import BaseModel, TypeAdapter
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

_SCALARS = (str, int, float, bool, date, datetime, uuid.UUID)
_objects: dict[type[BaseModel], type] = {}
_inputs: dict[tuple[type[BaseModel], str], type] = {}
_enums: dict[type[Enum], Any] = {}
# Relay Node types by GraphQL name, for ``node(id:)``.
node_types: dict[str, type] = {}

NodeLoader = Callable[[Info[Any, Any], list[str]], Awaitable[list[Any]]]


def graphql_enum(enum: type[Enum]) -> Any:
    if enum not in _enums:
        _enums[enum] = strawberry.enum(enum, description=(enum.__doc__ or "").strip() or None)
    return _enums[enum]


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _convert(annotation: Any, nested: Callable[[type[BaseModel]], type]) -> Any:
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"no GraphQL type for the union {annotation!r}")
        return _convert(members[0], nested) | None
    if origin is list:
        return list[_convert(get_args(annotation)[0], nested)]  # type: ignore[misc]
    # A type that is JSON on the wire with a parser of its own (a rule): the JSON scalar.
    if (
        origin is dict
        or annotation is dict
        or annotation is Any
        or getattr(annotation, "graphql_json", False)
    ):
        return JSON
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return nested(annotation)
        if issubclass(annotation, Enum):
            return graphql_enum(annotation)
        if issubclass(annotation, _SCALARS):
            return annotation
    raise TypeError(f"no GraphQL type for {annotation!r}")


def _is_type_of(*models: type) -> Any:
    def is_type_of(cls: type, obj: Any, _info: Any) -> bool:
        return isinstance(obj, models)

    return classmethod(is_type_of)


def object_type(
    model: type[BaseModel],
    *,
    name: str | None = None,
    description: str | None = None,
    node: NodeLoader | None = None,
) -> type:
    """The GraphQL output type of ``model`` (built once per model). With ``node``, a Relay Node:
    ``node`` loads the objects of a list of raw ids for ``node(id:)`` and Relay refetching."""
    if model in _objects:
        return _objects[model]
    type_name = name or model.__name__.removesuffix("Out")
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__annotations__": annotations}
    for field_name, info in model.model_fields.items():
        if node is not None and field_name == "id":
            raw_id = _snake(type_name) + "_id"
            namespace[raw_id] = strawberry.field(
                resolver=_raw_id, description="The raw UUID (as used by REST)."
            )
            continue
        annotations[field_name] = _convert(info.annotation, object_type)
        if _parsed_json(info.annotation):
            namespace[field_name] = strawberry.field(
                resolver=_json_resolver(field_name, info.annotation), description=info.description
            )
            continue
        namespace[field_name] = strawberry.field(description=info.description)
    namespace["is_type_of"] = _is_type_of(model)
    bases: tuple[type, ...] = ()
    if node is not None:
        bases = (relay.Node,)
        namespace["resolve_id"] = classmethod(_resolve_id)
        namespace["resolve_nodes"] = classmethod(_node_resolver(node))
    cls = types.new_class(type_name, bases, {}, lambda ns: ns.update(namespace))
    doc = description or (model.__doc__ or "").strip() or None
    generated = strawberry.type(cls, name=type_name, description=doc)
    _objects[model] = generated
    if node is not None:
        node_types[type_name] = generated
    return generated


def _parsed_json(annotation: Any) -> bool:
    """Whether a field holds a type that is JSON on the wire with a parser of its own."""
    annotation = _unwrap(annotation)
    members = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else ()
    return any(getattr(a, "graphql_json", False) for a in (annotation, *members))


def _json_resolver(field_name: str, annotation: Any) -> Callable[..., Any]:
    """The field as the JSON its type serializes to (the REST body's value)."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def resolve(root: Any) -> Any:
        return adapter.dump_python(getattr(root, field_name), mode="json")

    return resolve


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _raw_id(root: Any) -> uuid.UUID:
    value: uuid.UUID = root.id
    return value


def _resolve_id(cls: type, root: Any, *, info: Info[Any, Any]) -> str:
    return str(root.id)


def _node_resolver(load: NodeLoader) -> Callable[..., Awaitable[list[Any]]]:
    async def resolve_nodes(
        cls: type,
        *,
        info: Info[Any, Any],
        node_ids: Iterable[str],
        required: bool = False,
    ) -> list[Any]:
        return await load(info, list(node_ids))

    return resolve_nodes


def input_type(model: type[BaseModel], *, name: str, description: str | None = None) -> type:
    """The GraphQL input type of ``model``: every field optional, UNSET when not sent."""
    key = (model, name)
    if key in _inputs:
        return _inputs[key]
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__annotations__": annotations}
    for field_name, info in model.model_fields.items():
        converted = _convert(
            info.annotation, lambda nested: input_type(nested, name=nested.__name__ + "Input")
        )
        annotations[field_name] = converted if _is_optional(converted) else converted | None
        namespace[field_name] = strawberry.field(
            default=strawberry.UNSET, description=info.description
        )
    cls = types.new_class(name, (), {}, lambda ns: ns.update(namespace))
    doc = description or (model.__doc__ or "").strip() or None
    generated = strawberry.input(cls, name=name, description=doc)
    _inputs[key] = generated
    return generated


def _is_optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def provided(value: Any) -> Any:
    """A strawberry input as a plain dict of the fields the client actually sent (recursively)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: provided(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not strawberry.UNSET
        }
    if isinstance(value, list):
        return [provided(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value
