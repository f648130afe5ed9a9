"""Per-request DataLoaders for cases: every by-id lookup, and every case's history, in one GraphQL
request is one query.

A loader opens its own short read connection (fields resolve concurrently; a connection is not
concurrency-safe).
"""

import uuid
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from app.cases import service
from app.cases.schemas import CaseOut, CaseTransitionOut
from app.core.auth import Caller
from app.db import read_connection


def cases_by_id(caller: Caller) -> DataLoader[uuid.UUID, CaseOut | None]:
    async def load(ids: Sequence[uuid.UUID]) -> list[CaseOut | None]:
        async with read_connection() as conn:
            found = await service.get_cases(conn, caller, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)


def transitions_by_case(caller: Caller) -> DataLoader[CaseOut, list[CaseTransitionOut]]:
    """A case's history, oldest first (keyed by the case itself, by its id)."""

    async def load(found: Sequence[CaseOut]) -> list[list[CaseTransitionOut]]:
        async with read_connection() as conn:
            histories = await service.transitions_of(conn, caller, found)
        return [histories[case.id] for case in found]

    return DataLoader(load_fn=load, cache_key_fn=lambda case: case.id)
