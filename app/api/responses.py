"""Responses serialised once: endpoints hand over the typed model, pydantic-core writes its JSON.

FastAPI would validate a returned model against ``response_model`` a second time and then encode it
again; a ``Response`` it passes through untouched (``response_model`` on the route still documents
the schema). Services already return exactly the output model, so nothing is lost.
"""

from typing import Any

from fastapi import Response
from pydantic import BaseModel

from app.core.pagination import Page

JSON = "application/json"


def json_response(model: BaseModel, status_code: int = 200, **headers: str) -> Response:
    body = model.__pydantic_serializer__.to_json(model)
    return Response(body, status_code, headers or None, JSON)


def page_response(page: Page[Any]) -> Response:
    """A list page as ``{"data": [...], "next_cursor": ..., "has_more": ...}``."""
    items = b",".join(item.__pydantic_serializer__.to_json(item) for item in page.items)
    cursor = b"null" if page.next_cursor is None else b'"' + page.next_cursor.encode() + b'"'
    more = b"true" if page.has_more else b"false"
    body = b'{"data":[' + items + b'],"next_cursor":' + cursor + b',"has_more":' + more + b"}"
    return Response(body, 200, None, JSON)
