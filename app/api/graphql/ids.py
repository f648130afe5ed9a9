"""Relay global ids: ``base64("Customer:<uuid>")``. Every id argument also takes the raw UUID."""

import uuid

from strawberry import relay

from app.core.errors import BadRequest


def decode_global_id(value: str) -> tuple[str, str]:
    """(type name, node id) of a Relay global id; ``invalid_id`` when it is not one."""
    try:
        type_name, node_id = relay.from_base64(value)
    except ValueError as exc:
        raise BadRequest(f"{value!r} is not a valid id.", code="invalid_id") from exc
    if not type_name or not node_id:
        raise BadRequest(f"{value!r} is not a valid id.", code="invalid_id")
    return type_name, node_id


def parse_id(type_name: str, value: str) -> uuid.UUID:
    """An id of ``type_name`` as clients send it: the Relay global id or the raw UUID."""
    try:
        return uuid.UUID(value)
    except ValueError:
        pass
    found_type, node_id = decode_global_id(value)
    if found_type == type_name:
        try:
            return uuid.UUID(node_id)
        except ValueError:
            pass
    raise BadRequest(f"{value!r} is not a {type_name.lower()} id.", code="invalid_id")


def global_id(type_name: str, raw_id: uuid.UUID) -> str:
    return str(relay.to_base64(type_name, str(raw_id)))
