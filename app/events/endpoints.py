import uuid
from typing import Annotated

from fastapi import Query

from app.api.deps import ScopeDep
from app.api.routing import resource_router
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.events import service
from app.events.schemas import EventPage

router = resource_router("/events", "events")


@router.get(
    "",
    summary="Page through the event log",
    description="Committed events in feed `position` order: each event gets its position shortly "
    "after its transaction commits, above every position handed out before, so a reader never "
    "skips an event that committed late; a customer's events appear in `sequence` order. Start "
    "without `cursor`, then pass `next_cursor` back as `cursor`. `next_cursor` is never null: "
    "an empty page means you are up to date, poll again later with the same cursor. "
    "Kept 90 days.",
)
async def list_events(
    scope: ScopeDep,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    types: Annotated[
        str | None,
        Query(
            max_length=2000,
            pattern=r"^[a-z_.,]*$",
            description="Comma-separated event types, e.g. `customer.created,customer.updated`.",
        ),
    ] = None,
    customer_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> EventPage:
    wanted = [t for t in (types or "").split(",") if t]
    rows, next_cursor, has_more = await service.read_feed(
        scope.conn, scope.caller, cursor=cursor, types=wanted, customer_id=customer_id, limit=limit
    )
    return EventPage(
        data=rows,
        next_cursor=next_cursor,
        has_more=has_more,
    )
