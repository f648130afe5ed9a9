"""GraphQL over HTTP, with the transport's errors as problems.

Strawberry answers a bad request (invalid JSON, a body that is not an object, no `query`, variables
that are not an object, an unsupported Content-Type, a mutation over GET) with ``text/plain``, and a
few malformed bodies (`[]`, `"x"`, `1`, deeply nested variables) with a 500. Here every one of them is
an ``application/problem+json`` with a stable code, raised as a ``KehuError`` so the app's error
handlers render it exactly as on /v1:

- 400 ``invalid_request``: the body or query string is not a GraphQL request;
- 415 ``unsupported_media_type``: a POST whose body is not ``application/json``;
- 405 ``method_not_allowed``: a mutation over GET (``Allow: POST``);
- 404 ``not_found``: the GraphiQL page asked for while ``KEHU_GRAPHIQL`` is off.

The body is parsed once, with the same JSON reader as /v1, and refused before strawberry sees it
when it is nested deeper than ``MAX_JSON_DEPTH`` or holds a lone surrogate anywhere.
"""

import json
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from app.api.deps import authenticate, rate_limiter
from app.api.graphql.context import Context, operation_cost
from app.api.graphql.executor import GraphQLExecutor
from app.api.graphql.graphiql import graphiql_page
from app.core.errors import BadRequest, MethodNotAllowed, NotFound, UnsupportedMediaType
from app.core.http import InvalidJSON, is_json_media_type, load_json
from app.core.schemas import hostile_json

GRAPHIQL_OFF = (
    "GraphiQL is not served here (KEHU_GRAPHIQL is off): send GraphQL requests with POST, "
    "or as GET with `query`."
)


def _invalid(detail: str) -> BadRequest:
    return BadRequest(detail, code="invalid_request")


def decode_request_json(data: str | bytes) -> dict[str, Any]:
    """The POST body, or the `variables` of a GET: a JSON object, not too deep."""
    try:
        value = load_json(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    except InvalidJSON as exc:
        raise _invalid(str(exc)) from None
    if not isinstance(value, dict):
        raise _invalid(
            "A GraphQL request is a JSON object: "
            '{"query": "...", "variables": {...}, "operationName": "..."}.'
        )
    # Too deep, or a lone surrogate (never valid text, and no argument could pass it on to the
    # database); NUL and non-finite numbers are refused by the input's own validation, at the field.
    found = hostile_json(value, allow_nul=True, allow_non_finite=True)
    if found is not None:
        where = ".".join(str(p) for p in found[0]) or "The request"
        raise _invalid(f"`{where}` {found[1]}.")
    return value


def _operation(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    query, variables = body.get("query"), body.get("variables")
    operation_name, extensions = body.get("operationName"), body.get("extensions")
    if not isinstance(query, str) or not query:
        raise _invalid("No GraphQL query found in the request: send `query` as a string.")
    if variables is not None and not isinstance(variables, dict):
        raise _invalid("`variables` must be a JSON object or null.")
    if not isinstance(operation_name, str | None):
        raise _invalid("`operationName` must be a string or null.")
    if extensions is not None and not isinstance(extensions, dict):
        raise _invalid("`extensions` must be a JSON object or null.")
    return query, variables, operation_name


def post_endpoint(executor: GraphQLExecutor) -> Any:
    """The POST /graphql handler: auth and rate limit as on /v1, then ``executor``."""

    async def graphql_post(request: Request) -> Response:
        if not is_json_media_type(request.headers.get("content-type")):
            raise UnsupportedMediaType(
                "Send GraphQL requests as JSON, with `Content-Type: application/json`.",
                headers={"Accept-Post": "application/json"},
            )
        caller = await authenticate(request)
        raw = await request.body()
        try:
            parsed: object = load_json(raw)
        except InvalidJSON:
            parsed = None
        cost = (
            operation_cost(parsed.get("query"), parsed.get("operationName"))
            if isinstance(parsed, dict)
            else 1
        )
        limit_headers = await rate_limiter().hit(str(caller.key_id), cost=cost)
        query, variables, operation_name = _operation(decode_request_json(raw))
        body = await executor.run(query, variables, operation_name, Context(caller))
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
        return Response(
            content.encode("utf-8", "surrogatepass"),
            headers=limit_headers,
            media_type="application/json",
        )

    return graphql_post


class KehuGraphQLRouter(GraphQLRouter[Context, None]):
    """Strawberry's router with the transport's errors as problems, and GraphiQL served from the
    package: ``graphiql_assets`` is the URL path of its assets (``graphiql.mount_assets``), None
    when GraphiQL is off."""

    def __init__(self, schema: BaseSchema, *, graphiql_assets: str | None, **kwargs: Any) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql_assets else None, **kwargs)
        self.graphiql_assets = graphiql_assets

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # The page only for a browser asking for HTML, as the context lets it in without a key
        # (``context._wants_graphiql``); strawberry would also serve it for `Accept: */*`.
        wants_html = "text/html" in request.headers.get("accept", "")
        return wants_html and super().should_render_graphql_ide(request)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        if self.graphiql_assets is None:  # strawberry asks for no page then; never a 500 if it did
            raise NotFound(GRAPHIQL_OFF)
        return graphiql_page(request.scope.get("root_path", "") + self.graphiql_assets)

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        if request.method == "POST" and not is_json_media_type(request.content_type):
            raise UnsupportedMediaType(
                "Send GraphQL requests as JSON, with `Content-Type: application/json`.",
                headers={"Accept-Post": "application/json"},
            )
        try:
            data = await super().parse_http_body(request)
        except HTTPException as exc:
            raise _invalid(exc.reason) from None
        if not isinstance(data, GraphQLRequestData):
            raise _invalid("Batched requests are not supported: send one operation per request.")
        if not isinstance(data.operation_name, str | None):
            raise _invalid("`operationName` must be a string or null.")
        return data

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise MethodNotAllowed(
                    f"{exc.reason}; send it with POST.", headers={"Allow": "POST"}
                ) from None
            raise _invalid(exc.reason) from None

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        # A safety net: any other transport error strawberry raises becomes a problem too.
        try:
            return await super().run(*args, **kwargs)
        except HTTPException as exc:
            if exc.status_code == 405:
                raise MethodNotAllowed(exc.reason, headers={"Allow": "GET, POST"}) from None
            if exc.status_code == 404:
                # Strawberry's only 404: the IDE page asked for while GraphiQL is off.
                raise NotFound(GRAPHIQL_OFF) from None
            raise _invalid(exc.reason) from None
