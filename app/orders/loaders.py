"""Per-request DataLoaders for orders: every by-id lookup in one GraphQL request is one query.

A loader opens its own short read connection (fields resolve concurrently; a connection is not
concurrency-safe).
"""

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from app.core.auth import Caller
from app.db import read_connection
from app.orders import service
from app.orders.schemas import OrderOut


def orders_by_id(caller: Caller) -> DataLoader[uuid.UUID, OrderOut | None]:
    async def load(ids: Sequence[uuid.UUID]) -> list[OrderOut | None]:
        async with read_connection() as conn:
            found = await service.get_orders(conn, caller, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)
