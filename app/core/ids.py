"""UUIDv7 identifiers, generated in the application so every row is portable across shards."""

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)
