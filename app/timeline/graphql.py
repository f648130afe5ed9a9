"""``Customer.timeline``: the REST timeline as a Relay connection on the customer type. The first
page of every customer in a request comes from one statement (a DataLoader); pages after a
cursor are read per customer."""

from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.extend import type_field
from app.api.graphql.pagination import check_page, page_info
from app.api.graphql.pydantic_types import object_type
from app.core.pagination import Page
from app.db import read_connection
from app.timeline import service
from app.timeline.loaders import first_timeline_pages
from app.timeline.schemas import TimelineEntry

TimelineEntryType: Any = object_type(TimelineEntry, name="TimelineEntry")

DEFAULT_TIMELINE_PAGE = 20


@strawberry.type(name="TimelineEdge")
class TimelineEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this entry.")
    node: TimelineEntryType


@strawberry.type(name="TimelineConnection")
class TimelineConnection:
    edges: list[TimelineEdge]
    page_info: relay.PageInfo


async def _connection(page: Page[TimelineEntry], after: str | None) -> TimelineConnection:
    edges = [
        TimelineEdge(cursor=await service.encode_position(entry), node=entry)
        for entry in page.items
    ]
    return TimelineConnection(edges=edges, page_info=page_info(edges, after, page.next_cursor))


async def customer_timeline(
    root: Any,
    info: GraphQLInfo,
    first: int = DEFAULT_TIMELINE_PAGE,
    after: str | None = None,
    kinds: Annotated[
        list[str] | None,
        strawberry.argument(description="Only these kinds (as REST's `?kinds=`)."),
    ] = None,
) -> TimelineConnection:
    check_page(first, after)
    caller = info.context.caller
    if after is None:
        wanted = tuple(service.parse_kinds(kinds) or ()) or None
        loader = info.context.loader(first_timeline_pages)
        return await _connection(await loader.load((root.id, wanted, first)), None)
    async with read_connection() as conn:
        page = await service.customer_timeline(
            conn, caller, root.id, kinds=kinds, limit=first, cursor=after
        )
    return await _connection(page, after)


TIMELINE_FIELD = type_field(
    "timeline",
    customer_timeline,
    description="Interactions, cases and their status changes, feedback (and whatever else is "
    "registered), newest first, one cursor across kinds.",
)
