"""How a domain declares its /v1 routes: ``resource_router`` builds every /v1 router, so none can miss
the request pipeline (``KehuRoute``: authentication, rate limit, request checks, sessions,
Idempotency-Key, conditional requests, and the OpenAPI documentation of all of it)."""

from typing import Annotated

from fastapi import APIRouter, Header

from app.api.deps import KehuRoute
from app.api.openapi import IF_MATCH

# The If-Match header of a PATCH or DELETE, as sent (``app.core.http.expected_version`` reads it).
# Documented by the pipeline, with the 412 it implies, on every route that takes it.
IfMatchDep = Annotated[str | None, Header(alias=IF_MATCH, include_in_schema=False)]


class QueryRoute(KehuRoute):
    """A POST that only reads: a search whose question does not fit a query string. Add it with
    ``router.add_api_route(path, endpoint, methods=["POST"], route_class_override=QueryRoute)``."""

    stores_responses = False
    reads_only = True


def resource_router(
    prefix: str, tag: str, *, route_class: type[KehuRoute] = KehuRoute
) -> APIRouter:
    """The router of one resource under /v1 (``prefix`` like ``/customers``), its operations under
    the OpenAPI ``tag`` of its domain. ``route_class`` may only refine ``KehuRoute`` (say, a route
    whose responses are never stored for Idempotency-Key)."""
    if not (isinstance(route_class, type) and issubclass(route_class, KehuRoute)):
        raise TypeError(f"/v1 routes must be KehuRoutes, not {route_class!r}")
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"A resource prefix looks like /customers, not {prefix!r}")
    return APIRouter(prefix=prefix, tags=[tag], route_class=route_class)


def check_pipeline(router: APIRouter) -> APIRouter:
    """``router`` if every route in it goes through the pipeline; TypeError at start-up otherwise
    (a route added with another route class, or a router not built by ``resource_router``)."""
    for route in router.routes:
        if not isinstance(route, KehuRoute):
            path = getattr(route, "path", route)
            raise TypeError(f"{router.prefix}: route {path} does not use KehuRoute")
    return router
