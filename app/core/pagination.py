"""Keyset pagination with opaque cursors (sqlakeyset underneath).

A cursor is the sqlakeyset bookmark plus the sort it was made for, base64url-encoded: clients treat it
as an opaque string, and a cursor replayed with another sort is refused instead of skipping rows.
"""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlakeyset import BadBookmark, serialize_bookmark
from sqlakeyset.asyncio import select_page
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class PageOut(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null at the end."
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None
    # cursors[i] continues right after items[i] (Relay edges need one per item).
    cursors: Sequence[str] = ()


def encode_cursor(sort: str, bookmark: str) -> str:
    raw = json.dumps([sort, bookmark], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, bookmark = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise BadRequest("The cursor is not valid.", code="invalid_cursor") from exc
    if made_for != sort or not isinstance(bookmark, str):
        raise BadRequest(
            "The cursor was made for another sort order; start again without a cursor.",
            code="invalid_cursor",
        )
    return bookmark


async def fetch_page(
    session: AsyncSession, query: Select[Any], *, limit: int, cursor: str | None, sort: str
) -> Page[Any]:
    """Run ``query`` (already ordered by a unique key) one page at a time; items are the rows."""
    bookmark = decode_cursor(cursor, sort) if cursor else None
    try:
        page = await select_page(session, query, per_page=limit, page=bookmark)
    except (BadBookmark, ValueError, TypeError) as exc:
        raise BadRequest("The cursor is not valid.", code="invalid_cursor") from exc
    rows = list(page)
    markers = (page.paging.get_marker_at(i) for i in range(len(rows)))
    cursors = [encode_cursor(sort, serialize_bookmark(marker)) for marker in markers]
    next_cursor = None
    if page.paging.has_next:
        next_cursor = encode_cursor(sort, page.paging.bookmark_next)
    return Page(rows, next_cursor, cursors)
