"""The request handler of a /v1 route: FastAPI's own parameter and body validation, without the
machinery a /v1 endpoint never uses.

FastAPI's handler solves a tree of dependencies per request (a recursive ``solve_dependencies``, a
dependency cache, exit stacks for ``yield`` dependencies, telemetry spans around each step) and
serialises returned models. A /v1 endpoint has exactly one dependency, the request scope the
pipeline already built, so all of that was 10-15 % of a read's CPU (docs/benchmarks.md). This
handler passes the scope straight in and validates path, query, header and body parameters with
FastAPI's own functions (the same errors, the same 422 problem). A route with anything else (other
dependencies, cookies, forms, ``Response`` or ``BackgroundTasks`` parameters, a sync endpoint),
and every request while ``app.dependency_overrides`` is set or FastAPI's OpenTelemetry hooks trace
it (``KEHU_OPENTELEMETRY``), gets FastAPI's handler unchanged.
"""

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response, params
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError

# _effective_route_context_var: the route as included in the app (prefix, app-level dependency
# overrides), which FastAPI hands to get_route_handler() only through this variable. FastAPI is
# pinned in uv.lock, and the whole suite runs through this handler.
from fastapi.routing import APIRoute, _effective_route_context_var, serialize_response
from fastapi.telemetry import get_telemetry_data
from pydantic_core import PydanticUndefined

from app.core.schemas import json_checked

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def lean_handler(
    route: APIRoute,
    scope_dependency: Callable[[Request], Awaitable[Any]],
    fallback: Handler,
) -> Handler:
    """The handler for ``route``: lean when its endpoint takes only ``scope_dependency`` and plain
    parameters, ``fallback`` (FastAPI's) otherwise."""
    effective: Any = route
    context = _effective_route_context_var.get()
    if context is not None and context.original_route is route:
        effective = context
    dependant = effective.dependant
    endpoint = dependant.call
    if not _is_lean(dependant, effective.body_field, scope_dependency):
        return fallback
    scope_names = [sub.name for sub in dependant.dependencies]
    path_params = dependant.path_params
    query_params = dependant.query_params
    header_params = dependant.header_params
    body_params = dependant.body_params
    embed_body_fields = effective._embed_body_fields
    overrides = effective.dependency_overrides_provider
    response_field = effective.response_field
    status_code = effective.status_code or 200

    async def handler(request: Request) -> Response:
        if get_telemetry_data() is not None or (
            overrides is not None and getattr(overrides, "dependency_overrides", None)
        ):
            return await fallback(request)
        values: dict[str, Any] = {}
        if scope_names:
            scope = await scope_dependency(request)
            for name in scope_names:
                values[name] = scope
        errors: list[Any] = []
        if path_params:
            found, wrong = request_params_to_args(path_params, request.path_params)
            values.update(found)
            errors += wrong
        if query_params:
            found, wrong = request_params_to_args(query_params, request.query_params)
            values.update(found)
            errors += wrong
        if header_params:
            found, wrong = request_params_to_args(header_params, request.headers)
            values.update(found)
            errors += wrong
        body: Any = PydanticUndefined
        if body_params:
            # The pipeline has checked the media type and parsed the JSON (app/api/deps.py).
            if await request.body():
                body = await request.json()
            with json_checked(getattr(request.state, "json_plain", False)):
                found, wrong = await request_body_to_args(
                    body_fields=body_params, received_body=body, embed_body_fields=embed_body_fields
                )
            values.update(found)
            errors += wrong
        if errors:
            raise RequestValidationError(errors, body=None if body is PydanticUndefined else body)
        result = await endpoint(**values)
        if isinstance(result, Response):
            return result
        content = await serialize_response(
            field=response_field, response_content=result, dump_json=True
        )
        return Response(content, status_code, media_type="application/json")

    return handler


def _is_lean(dependant: Any, body_field: Any, scope_dependency: Callable[..., Any]) -> bool:
    if not inspect.iscoroutinefunction(dependant.call):
        return False
    for sub in dependant.dependencies:
        if sub.call is not scope_dependency or sub.name is None:
            return False
    if body_field is not None and isinstance(body_field.field_info, params.Form):
        return False
    return not (
        dependant.cookie_params
        or dependant.request_param_name
        or dependant.http_connection_param_name
        or dependant.websocket_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )
