"""Rate limits over HTTP: GraphQL charged per root field, invalid keys throttled per address."""

from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.api import deps
from app.apikeys import service as apikeys
from app.core.auth import Caller
from app.core.config import Settings
from app.db import Connection
from app.main import create_app
from tests.fixtures.factories import KeyFactory, bearer, customer_body


@pytest.fixture
async def limited_app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(
        log_json=True, log_level="warning", rate_limit="40/minute", auth_failure_limit="3/minute"
    )
    application = create_app(settings)
    async with LifespanManager(application):
        yield application
    deps.reset_rate_limiter()


@pytest.fixture
async def limited(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kehu.test") as http:
        yield http


async def test_graphql_mutations_are_charged_per_root_field(
    limited: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    headers = bearer(await make_key("admin"))
    aliased = " ".join(
        f'c{i}: createCustomer(input: {{firstName: "N{i}"}}) {{ customer {{ id }} }}'
        for i in range(30)
    )
    refused = await limited.post(
        "/graphql", json={"query": f"mutation {{ {aliased} }}"}, headers=headers
    )
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    listed = await limited.get("/v1/customers", headers=headers)
    assert listed.json()["data"] == []  # nothing ran, and nothing was counted
    assert listed.headers["ratelimit-remaining"] == "39"
    # Seven mutation fields: 35 of the 40 (REST still costs one per request).
    seven = " ".join(
        f'c{i}: createCustomer(input: {{firstName: "N{i}"}}) {{ customer {{ id }} }}'
        for i in range(7)
    )
    ok = await limited.post("/graphql", json={"query": f"mutation {{ {seven} }}"}, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.headers["ratelimit-remaining"] == "4"
    posted = await limited.post("/v1/customers", json=customer_body(), headers=headers)
    assert posted.headers["ratelimit-remaining"] == "3"
    two_queries = "{ a: customers(first: 1) { edges { cursor } } b: customers(first: 1) { edges { cursor } } }"
    queried = await limited.post("/graphql", json={"query": two_queries}, headers=headers)
    assert queried.headers["ratelimit-remaining"] == "1"
    assert (await limited.post("/graphql", json={"query": "mutation {"}, headers=headers)).headers[
        "ratelimit-remaining"
    ] == "0"


async def test_invalid_keys_are_throttled_per_address(
    limited_app: FastAPI,
    limited: httpx.AsyncClient,
    make_key: KeyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    valid = bearer(await make_key("customers:read"))
    assert (await limited.get("/v1/customers", headers=valid)).status_code == 200
    lookups: list[str] = []
    real = apikeys.authenticate

    async def counting(conn: Connection, presented: str) -> Caller | None:
        lookups.append(presented)
        return await real(conn, presented)

    # the module app.api.deps calls it through
    monkeypatch.setattr(apikeys, "authenticate", counting)
    for i in range(3):
        bad = await limited.get("/v1/customers", headers={"Authorization": f"Bearer kehu_bad{i}"})
        assert bad.status_code == 401
    assert len(lookups) == 3
    for path in ("/v1/customers", "/graphql?query=%7Bcustomers%7Bedges%7Bcursor%7D%7D%7D"):
        throttled = await limited.get(path, headers={"Authorization": "Bearer kehu_guess"})
        assert throttled.status_code == 429, throttled.text
        assert throttled.headers["content-type"].startswith("application/problem+json")
        assert int(throttled.headers["retry-after"]) >= 1
    assert len(lookups) == 3  # refused without a database lookup
    deps.caller_cache.clear()  # even once its cache entry expired, the valid key works
    assert (await limited.get("/v1/customers", headers=valid)).status_code == 200
    # Another address is not affected.
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=limited_app, client=("10.0.0.9", 4000)),
        base_url="http://kehu.test",
    )
    async with other:
        elsewhere = await other.get("/v1/customers", headers={"Authorization": "Bearer kehu_x"})
    assert elsewhere.status_code == 401
