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
from sqlalchemy import Select, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY

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


async def first_pages(
    conn: Connection,
    query: Select[Any],
    *,
    owner: str,
    owner_ids: Sequence[Any],
    limit: int,
    sort: str,
) -> dict[Any, Page[Any]]:
    """The first page of ``query`` for each of ``owner_ids`` (``query`` filtered on its column
    ``owner``), in one statement: ``query`` runs ``LATERAL`` per id, and each page's cursors are
    the ones ``fetch_page`` hands out for ``query`` filtered on that id, so a client pages on
    with the list itself (a customer's cases in GraphQL: the first page of 50 customers' cases in
    one statement, the next page of one customer's from ``GET /v1/cases?customer_id=``)."""
    pages: dict[Any, Page[Any]] = {owner_id: Page([], None, sort) for owner_id in owner_ids}
    if not owner_ids:
        return pages
    table = query.get_final_froms()[0]
    wanted = (
        func.unnest(bindparam("owner_ids", list(owner_ids), type_=ARRAY(table.c[owner].type)))
        .table_valued("owner_id")
        .render_derived(name="wanted")
    )
    per_owner = (
        query.where(table.c[owner] == wanted.c.owner_id)
        .limit(limit + 1)
        .correlate(wanted)
        .lateral("page_of")
    )
    statement = select(wanted.c.owner_id.label("_owner"), per_owner).select_from(
        wanted.join(per_owner, true())
    )
    order = [_ordering_column(clause) for clause in query._order_by_clauses]
    rows: dict[Any, list[Any]] = {owner_id: [] for owner_id in owner_ids}
    for row in await conn.execute(statement):
        rows[row._owner].append(row)
    for owner_id, found in rows.items():
        markers = [(tuple(getattr(row, name) for name in order), False) for row in found]
        next_cursor = None
        if len(found) > limit:
            next_cursor = await encode_cursor(sort, serialize_bookmark(markers[limit - 1]))
        pages[owner_id] = Page(found[:limit], next_cursor, sort, markers[:limit])
    return pages


def _ordering_column(clause: Any) -> str:
    """The selected column an ORDER BY term sorts on (``desc(cases.c.opened_at)`` →
    ``opened_at``)."""
    element = getattr(clause, "element", clause)
    name = getattr(element, "key", None) or getattr(element, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"first_pages needs plain column orderings, not {clause!r}")
    return name
