"""Per-request DataLoaders for segments: every by-id lookup, and every customer's segments, in one
GraphQL request are one query each. A loader opens its own short read connection."""

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from app.core.auth import Caller
from app.db import read_connection
from app.segments import service
from app.segments.schemas import CustomerSegmentOut, SegmentOut


def segments_by_id(caller: Caller) -> DataLoader[uuid.UUID, SegmentOut | None]:
    async def load(ids: Sequence[uuid.UUID]) -> list[SegmentOut | None]:
        async with read_connection() as conn:
            found = await service.get_segments(conn, caller, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)


def segments_of_customer(caller: Caller) -> DataLoader[uuid.UUID, list[CustomerSegmentOut]]:
    async def load(ids: Sequence[uuid.UUID]) -> list[list[CustomerSegmentOut]]:
        async with read_connection() as conn:
            found = await service.segments_of_customers(conn, caller, ids)
        return [found.get(i, []) for i in ids]

    return DataLoader(load_fn=load)
