"""Per-request DataLoaders for customers: every by-id lookup in one GraphQL request is one query.

Loaders open their own short read conn (fields resolve concurrently; a conn is not
concurrency-safe) and return the customer as the calling key may see it (``service.view``).
"""

import uuid
from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from app.core.auth import Caller
from app.customers import service
from app.db import read_connection

CustomerView = dict[str, Any]


class CustomerLoaders:
    """The customer loaders of one request, bound to its caller."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.by_id: DataLoader[uuid.UUID, CustomerView | None] = DataLoader(
            load_fn=self._load_by_id
        )

    async def _load_by_id(self, ids: Sequence[uuid.UUID]) -> list[CustomerView | None]:
        async with read_connection() as conn:
            found = await service.get_customers(conn, self.caller, ids)
            views = {cid: service.view(row, self.caller) for cid, row in found.items()}
        return [views.get(cid) for cid in ids]
