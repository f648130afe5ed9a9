"""Every /v1 route goes through the request pipeline (KehuRoute)."""

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute, iter_route_contexts

from app.api.deps import KehuRoute
from app.api.routing import check_pipeline, resource_router
from app.main import create_app


def _routes() -> list[tuple[str, object]]:
    # FastAPI keeps included routers as branches: walk them down to each route.
    return [(str(ctx.path), ctx.original_route) for ctx in iter_route_contexts(create_app().routes)]


def test_every_v1_route_is_a_kehu_route() -> None:
    routes = _routes()
    v1 = [(path, route) for path, route in routes if path.startswith("/v1")]
    assert len(v1) >= 10
    assert [path for path, route in v1 if not isinstance(route, KehuRoute)] == []
    # And nothing else pretends to be one.
    assert [p for p, r in routes if isinstance(r, KehuRoute) and not p.startswith("/v1/")] == []


def test_resource_router_builds_pipeline_routers() -> None:
    router = resource_router("/things", "things")

    @router.get("/{thing_id}")
    async def get_thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    assert router.tags == ["things"]
    assert isinstance(router.routes[0], KehuRoute)
    assert check_pipeline(router) is router
    with pytest.raises(TypeError):
        resource_router("/things", "things", route_class=APIRoute)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefix"):
        resource_router("things/", "things")


def test_a_router_that_forgets_the_pipeline_is_refused() -> None:
    plain = APIRouter(prefix="/things")

    @plain.get("")
    async def list_things() -> list[int]:
        return []

    with pytest.raises(TypeError, match="KehuRoute"):
        check_pipeline(plain)
