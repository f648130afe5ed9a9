"""The first timeline page of many customers in one statement (GraphQL ``customers { timeline }``)."""

import uuid
from collections import defaultdict
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from app.core.auth import Caller
from app.core.pagination import Page
from app.db import read_connection
from app.timeline import service
from app.timeline.schemas import TimelineEntry

# (customer id, kinds asked for (sorted, or None for all), page size)
TimelineKey = tuple[uuid.UUID, tuple[str, ...] | None, int]


def first_timeline_pages(caller: Caller) -> DataLoader[TimelineKey, Page[TimelineEntry]]:
    async def load(keys: Sequence[TimelineKey]) -> list[Page[TimelineEntry]]:
        # One statement per distinct (kinds, size): in practice one for the whole request.
        groups: dict[tuple[tuple[str, ...] | None, int], list[uuid.UUID]] = defaultdict(list)
        for customer_id, kinds, limit in keys:
            groups[(kinds, limit)].append(customer_id)
        found: dict[TimelineKey, Page[TimelineEntry]] = {}
        async with read_connection() as conn:
            for (kinds, limit), customer_ids in groups.items():
                pages = await service.first_pages(
                    conn, caller, customer_ids, kinds=kinds, limit=limit
                )
                for customer_id, page in pages.items():
                    found[(customer_id, kinds, limit)] = page
        return [found[key] for key in keys]

    return DataLoader(load_fn=load)
