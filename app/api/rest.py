"""Assembles the /v1 REST routers from the domain registry."""

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

# Starlette's own reading of the path a route matches against (the request path less root_path);
# Starlette is pinned in uv.lock, and every request of the suite goes through it.
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.api.routing import check_pipeline
from app.domains import all_domains

PREFIX = "/v1"


class _DomainRouter(APIRouter):
    """One domain's /v1 routes. A request whose first segment under /v1 names none of them
    (`orders` in /v1/orders/…) is ruled out with a set look-up: FastAPI would try every route's
    pattern of every domain in turn, ~80 µs of a POST /v1/orders and ~170 µs of a GET of a
    customer before this (docs/benchmarks.md)."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        super().__init__()
        self.routes.extend(routes)
        first = {getattr(route, "path", "/{").split("/")[1] for route in routes}
        # A route whose first segment is a parameter (or has no path) could match anything.
        self.segments = None if any(s.startswith("{") or not s for s in first) else frozenset(first)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.segments is not None:
            path = get_route_path(scope)
            if not path.startswith(PREFIX + "/"):
                return Match.NONE, {}
            if path[len(PREFIX) + 1 :].split("/", 1)[0] not in self.segments:
                return Match.NONE, {}
        return super().matches(scope)


def include_v1(app: FastAPI) -> None:
    """Each domain's router straight into the app under /v1: one level of included routers, not
    two (route matching walks every level on every request)."""
    for domain in all_domains():
        if domain.router is not None:
            router = check_pipeline(domain.router)
            app.include_router(_DomainRouter(router.routes), prefix=PREFIX)
