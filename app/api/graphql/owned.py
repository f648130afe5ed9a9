"""A customer's own records as a Relay connection on ``Customer`` (its interactions, cases,
feedback): the first page of every customer in a request comes from one statement (a DataLoader
over ``first_pages``, the domain's list query run ``LATERAL`` per customer), and ``after`` pages
on through the domain's ordinary list filtered by the customer, whose cursors the first page's
are."""

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from strawberry.dataloader import DataLoader
from strawberry.types.field import StrawberryField

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.extend import type_field
from app.api.graphql.pagination import check_page, connection
from app.core.auth import Caller
from app.core.pagination import Page, first_pages
from app.db import Connection, read_connection

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class OwnedList(Generic[T]):
    # The scope that reads these records.
    scope: str
    # The domain's list statement, unfiltered, in ``sort`` (its newest-first order).
    query: Callable[[], Select[Any]]
    # The sort key of that order as the list's cursors carry it.
    sort: str
    # A row of ``query`` as the domain's output model.
    from_row: Callable[[Any], T]
    # The list service, for pages after a cursor: (conn, caller, customer id, limit, cursor).
    next_page: Callable[[Connection, Caller, uuid.UUID, int, str], Awaitable[Page[T]]]

    def loader(self, caller: Caller) -> DataLoader[tuple[uuid.UUID, int], Page[T]]:
        async def load(keys: Sequence[tuple[uuid.UUID, int]]) -> list[Page[T]]:
            caller.require(self.scope)
            by_size: dict[int, list[uuid.UUID]] = defaultdict(list)
            for customer_id, limit in keys:
                by_size[limit].append(customer_id)
            found: dict[tuple[uuid.UUID, int], Page[T]] = {}
            async with read_connection() as conn:
                for limit, customer_ids in by_size.items():
                    pages = await first_pages(
                        conn,
                        self.query(),
                        owner="customer_id",
                        owner_ids=customer_ids,
                        limit=limit,
                        sort=self.sort,
                    )
                    for customer_id, page in pages.items():
                        found[(customer_id, limit)] = page.mapped(self.from_row)
            return [found[key] for key in keys]

        return DataLoader(load_fn=load)

    async def page(
        self, info: GraphQLInfo, customer_id: uuid.UUID, first: int, after: str | None
    ) -> Page[T]:
        check_page(first, after)
        if after is None:
            return await info.context.loader(self.loader).load((customer_id, first))
        async with read_connection() as conn:
            return await self.next_page(conn, info.context.caller, customer_id, first, after)

    def customer_field(
        self,
        name: str,
        edge_type: Callable[..., Any],
        connection_type: type,
        *,
        description: str,
    ) -> StrawberryField:
        """``Customer.<name>(first, after)``: this list of the customer as ``connection_type``."""

        async def resolve(
            root: Any, info: GraphQLInfo, first: int = 10, after: str | None = None
        ) -> Any:
            page = await self.page(info, root.id, first, after)
            return await connection(page, after, edge_type, connection_type)

        resolve.__annotations__["return"] = connection_type
        return type_field(name, resolve, description=description)
