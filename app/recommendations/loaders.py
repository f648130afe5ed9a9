"""Per-request DataLoaders for recommendations: the recommendations of every customer a GraphQL
request shows (with the same arguments) come from one statement.

A loader opens its own short read connection (fields resolve concurrently; a connection is not
concurrency-safe).
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from app.core.auth import Caller
from app.db import read_connection
from app.recommendations import service
from app.recommendations.enums import RequestedKind
from app.recommendations.schemas import RecommendationsOut

# (customer id, kind asked for, limit)
RecommendationsKey = tuple[uuid.UUID, RequestedKind | None, int]


def recommendations_by_customer(
    caller: Caller,
) -> DataLoader[RecommendationsKey, RecommendationsOut | None]:
    async def load(keys: Sequence[RecommendationsKey]) -> list[RecommendationsOut | None]:
        by_arguments: dict[tuple[RequestedKind | None, int], list[uuid.UUID]] = defaultdict(list)
        for customer_id, kind, limit in keys:
            by_arguments[(kind, limit)].append(customer_id)
        found: dict[RecommendationsKey, RecommendationsOut] = {}
        async with read_connection() as conn:
            for (kind, limit), customer_ids in by_arguments.items():
                each = await service.recommendations_of(
                    conn, caller, customer_ids, kind=kind, limit=limit
                )
                for customer_id, recommendations in each.items():
                    found[(customer_id, kind, limit)] = recommendations
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)
