"""Keyset pagination with opaque, signed cursors (sqlakeyset underneath).

A cursor carries the sqlakeyset bookmark and the sort it was made for, signed by ``core.cursors``:
a tampered cursor is a 400 before anything reaches a query, and a cursor replayed with another sort
is refused instead of skipping rows.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field
from sqlakeyset import BadBookmark, serialize_bookmark
from sqlakeyset.asyncio import select_page
from sqlalchemy import Select

from app.core import cursors
from app.core.errors import BadRequest
from app.db import Connection

T = TypeVar("T")
U = TypeVar("U")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def _page_example(schema: dict[str, Any], page: type[Any]) -> None:
    """A page's example, made of its item model's first example (an empty page without one)."""
    item = (
        get_args(page.model_fields["data"].annotation)[0] if "data" in page.model_fields else None
    )
    extra = getattr(item, "model_config", {}).get("json_schema_extra")
    examples = extra.get("examples", []) if isinstance(extra, dict) else []
    data = [examples[0]] if examples else []
    cursor = "eyJzIjoiLWNyZWF0ZWRfYXQiLCJiIjoiPmk6MTczMjUyNzAwMCJ9.c2lnbmF0dXJl"
    schema["examples"] = [{"data": data, "next_cursor": cursor, "has_more": True}]


class PageOut(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_example)

    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null at the end."
    )
    has_more: bool = Field(description="Whether another page follows.")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None
    sort: str = ""
    # sqlakeyset markers of each item, turned into cursors only when asked (Relay edges).
    markers: Sequence[Any] = ()

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    def mapped(self, convert: Callable[[T], U]) -> "Page[U]":
        """The same page with each item converted (rows into a domain's typed records)."""
        return Page(
            [convert(item) for item in self.items], self.next_cursor, self.sort, self.markers
        )

    async def item_cursors(self) -> list[str]:
        """cursors[i] continues right after items[i]."""
        return [await encode_cursor(self.sort, serialize_bookmark(m)) for m in self.markers]


async def encode_cursor(sort: str, bookmark: str) -> str:
    return await cursors.encode({"s": sort, "b": bookmark})


async def decode_cursor(cursor: str, sort: str) -> str:
    payload = await cursors.decode(cursor)
    if not isinstance(payload, dict) or not isinstance(payload.get("b"), str):
        raise BadRequest("The cursor is not valid.", code="invalid_cursor")
    if payload.get("s") != sort:
        raise BadRequest(
            "The cursor was made for another sort order; start again without a cursor.",
            code="invalid_cursor",
        )
    bookmark: str = payload["b"]
    return bookmark


async def fetch_page(
    conn: Connection, query: Select[Any], *, limit: int, cursor: str | None, sort: str
) -> Page[Any]:
    """Run ``query`` (already ordered by a unique key) one page at a time; items are the rows."""
    bookmark = await decode_cursor(cursor, sort) if cursor else None
    try:
        page = await select_page(conn, query, per_page=limit, page=bookmark)
    except (BadBookmark, ValueError, TypeError) as exc:
        raise BadRequest("The cursor is not valid.", code="invalid_cursor") from exc
    rows = list(page)
    markers = [page.paging.get_marker_at(i) for i in range(len(rows))]
    next_cursor = None
    if page.paging.has_next:
        next_cursor = await encode_cursor(sort, page.paging.bookmark_next)
    return Page(rows, next_cursor, sort, markers)
