"""The lean /v1 request handler (app/api/handler.py): FastAPI's validation and answers, and FastAPI's
own handler wherever the lean one does not apply."""

import uuid
from typing import Annotated

import httpx2 as httpx
from fastapi import Cookie, Depends, FastAPI, Request, Response

from app.api.deps import KehuRoute, RequestScope, ScopeDep, request_scope
from app.api.handler import lean_handler
from app.api.routing import resource_router
from app.core.auth import Caller
from tests.fixtures.api import assert_problem


def _route(router: object) -> KehuRoute:
    route = router.routes[0]  # type: ignore[attr-defined]
    assert isinstance(route, KehuRoute)
    return route


async def _fastapi_handler(request: Request) -> Response:
    return Response(b"fastapi")


def test_the_lean_handler_takes_only_routes_it_can_serve() -> None:
    router = resource_router("/things", "things")

    @router.get("/{thing_id}")
    async def get_thing(scope: ScopeDep, thing_id: uuid.UUID, q: str | None = None) -> Response:
        return Response(str(thing_id))

    lean = lean_handler(_route(router), request_scope, _fastapi_handler)
    assert lean is not _fastapi_handler

    for endpoint in (_other_dependency, _response_parameter, _cookie, _sync):
        scratch = resource_router("/things", "things")
        scratch.get("")(endpoint)
        handler = lean_handler(_route(scratch), request_scope, _fastapi_handler)
        assert handler is _fastapi_handler, endpoint.__name__


async def _one() -> int:
    return 1


async def _other_dependency(scope: ScopeDep, n: Annotated[int, Depends(_one)]) -> Response:
    return Response()


async def _response_parameter(scope: ScopeDep, response: Response) -> Response:
    return Response()


async def _cookie(scope: ScopeDep, session: Annotated[str | None, Cookie()] = None) -> Response:
    return Response()


def _sync(scope: ScopeDep) -> Response:
    return Response()


async def test_validation_errors_are_fastapis(client: httpx.AsyncClient) -> None:
    bad_id = await client.get("/v1/customers/not-a-uuid")
    body = assert_problem(bad_id, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["path.customer_id"]

    bad_query = await client.get("/v1/customers?limit=0")
    body = assert_problem(bad_query, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["query.limit"]

    no_body = await client.post("/v1/customers", headers={"Content-Type": "application/json"})
    assert_problem(no_body, 422, "validation_failed")

    unknown = await client.post("/v1/customers", json={"email": "a@example.com", "nmae": "x"})
    body = assert_problem(unknown, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["body.nmae"]


async def test_dependency_overrides_still_apply(app: FastAPI, client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/customers", json={"email": "override@example.com"})
    assert created.status_code == 201, created.text
    path = f"/v1/customers/{created.json()['id']}"
    assert (await client.get(path)).status_code == 200

    async def read_nothing(request: Request) -> RequestScope:
        scope = await request_scope(request)
        return RequestScope(Caller(uuid.uuid4(), "no scopes", frozenset()), scope.conn)

    app.dependency_overrides[request_scope] = read_nothing
    try:
        assert_problem(await client.get(path), 403, "missing_scope")
    finally:
        app.dependency_overrides.clear()
    assert (await client.get(path)).status_code == 200
