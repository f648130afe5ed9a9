"""Per-request DataLoaders for analytics: every customer's metrics in one GraphQL request is one
query. A loader opens its own short read connection (fields resolve concurrently)."""

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from app.analytics import service
from app.analytics.schemas import CustomerMetricsOut
from app.core.auth import Caller
from app.db import read_connection


def metrics_by_customer(caller: Caller) -> DataLoader[uuid.UUID, CustomerMetricsOut | None]:
    async def load(ids: Sequence[uuid.UUID]) -> list[CustomerMetricsOut | None]:
        async with read_connection() as conn:
            found = await service.metrics_of(conn, caller, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)
