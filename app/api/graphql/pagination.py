"""Relay connections over ``fetch_page`` pages, the same for every resource: argument checks and
``pageInfo``."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from strawberry import relay

from app.core.errors import ValidationFailed
from app.core.pagination import MAX_LIMIT, Page

T = TypeVar("T")
C = TypeVar("C")

MAX_CURSOR = 2000


def check_page(first: int, after: str | None) -> None:
    """``first`` within 1..MAX_LIMIT and ``after`` no longer than a cursor can be (422 otherwise)."""
    errors: list[dict[str, str]] = []
    if not 1 <= first <= MAX_LIMIT:
        errors.append({"field": "first", "message": f"must be between 1 and {MAX_LIMIT}"})
    if after is not None and len(after) > MAX_CURSOR:
        errors.append({"field": "after", "message": "is not a valid cursor"})
    if errors:
        raise ValidationFailed("The arguments are not valid; see extensions.errors.", errors=errors)


def page_info(edges: Sequence[Any], after: str | None, next_cursor: str | None) -> relay.PageInfo:
    """The ``pageInfo`` of a page of ``edges`` (each with a ``cursor``) read after ``after``."""
    return relay.PageInfo(
        has_next_page=next_cursor is not None,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )


async def connection(
    page: Page[T],
    after: str | None,
    edge_type: Callable[..., Any],
    connection_type: Callable[..., C],
    node: Callable[[T], Any] = lambda item: item,
) -> C:
    """A Relay connection of ``page``: an edge per item (``node(item)`` with its cursor)."""
    edges = [
        edge_type(cursor=cursor, node=node(item))
        for cursor, item in zip(await page.item_cursors(), page.items, strict=True)
    ]
    return connection_type(edges=edges, page_info=page_info(edges, after, page.next_cursor))
