"""Per-request DataLoaders for customers: every by-id lookup in one GraphQL request is one query.

A loader opens its own short read connection (fields resolve concurrently; a connection is not
concurrency-safe) and returns the customer as the calling key may see it (``service.view``).
"""

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from app.core.auth import Caller
from app.customers import service
from app.customers.schemas import CustomerOut
from app.db import read_connection


def customers_by_id(caller: Caller) -> DataLoader[uuid.UUID, CustomerOut | None]:
    async def load(ids: Sequence[uuid.UUID]) -> list[CustomerOut | None]:
        async with read_connection() as conn:
            found = await service.get_customers(conn, caller, ids)
        return [service.view(found[i], caller) if i in found else None for i in ids]

    return DataLoader(load_fn=load)
