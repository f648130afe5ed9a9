"""GraphQL at /graphql as a transport: keys, rate-limit headers, query limits, error codes and
masking, and the parse/validation caches. What each resource's fields and mutations do is tested
with that resource (tests/customers/test_customers_graphql.py)."""

from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from strawberry.extensions import ValidationCache

from app.core.config import Settings
from app.customers import service
from tests.fixtures.api import error_codes, gql
from tests.fixtures.factories import customer_input

LIST = "query List($first: Int!) { customers(first: $first) { edges { node { id email } } } }"
CREATE = """
mutation Create($input: CustomerCreateInput!) {
  createCustomer(input: $input) { customer { id } }
}
"""


async def test_without_a_key_is_401_problem_json(anon: httpx.AsyncClient) -> None:
    response = await anon.post("/graphql", json={"query": "{ customers { edges { cursor } } }"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthorized"

    bad = await anon.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": "Bearer kehu_nope"},
    )
    assert bad.status_code == 401
    assert bad.json()["code"] == "invalid_api_key"

    # a GET with a query needs a key too; only the GraphiQL page itself is open
    get = await anon.get("/graphql", params={"query": "{ __typename }"})
    assert get.status_code == 401
    page = await anon.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_rate_limit_headers(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert response.headers["ratelimit-limit"] == "100000"  # the `settings` fixture's limit
    assert int(response.headers["ratelimit-remaining"]) < 100000


class TestDepthLimit:
    @pytest.fixture
    def settings(self) -> Settings:
        # the customer schema is shallow (depth 5 at most), so test the limiter with a low limit
        return Settings(log_json=True, log_level="warning", graphql_max_depth=3)

    async def test_depth_limit(self, client: httpx.AsyncClient) -> None:
        shallow = "{ customers { edges { node { id } } } }"
        assert "errors" not in await gql(client, shallow)
        deep = "{ customers { edges { node { consent { channel } } } } }"
        body = await gql(client, deep)
        assert body.get("data") is None
        [error] = body["errors"]
        assert "exceeds maximum operation depth of 3" in error["message"], body
        assert error["extensions"]["code"] == "query_too_complex"
        hidden = (
            "query { ...F } "
            "fragment F on Query { customers { edges { node { consent { status } } } } }"
        )
        through_fragment = await gql(client, hidden)
        assert through_fragment.get("data") is None
        assert error_codes(through_fragment) == ["query_too_complex"], through_fragment


async def test_alias_limit(client: httpx.AsyncClient) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(31))
    body = await gql(client, "{ " + fields + " }")
    assert body.get("data") is None
    assert any("alias" in e["message"].lower() for e in body["errors"]), body
    assert {e["extensions"]["code"] for e in body["errors"]} == {"query_too_complex"}
    ok = await gql(client, "{ " + " ".join(f"a{i}: __typename" for i in range(30)) + " }")
    assert "errors" not in ok


async def test_token_limit(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ " + "__typename " * 2100 + "}")
    assert body.get("data") is None
    assert "more than 2000 tokens" in body["errors"][0]["message"], body
    assert body["errors"][0]["extensions"]["code"] == "query_too_complex"


async def test_invalid_queries_carry_a_code(client: httpx.AsyncClient) -> None:
    syntax = await gql(client, "{ customers { ")
    assert syntax["errors"][0]["extensions"] == {"code": "invalid_query", "status": 400}
    unknown = await gql(client, "{ customers { edges { node { favouriteColour } } } }")
    assert unknown.get("data") is None
    assert "favouriteColour" in unknown["errors"][0]["message"]
    assert unknown["errors"][0]["extensions"]["code"] == "invalid_query"


async def test_unexpected_errors_are_masked(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError('relation "customers" does not exist (asyncpg)')

    monkeypatch.setattr(service, "list_customers", broken)
    body = await gql(client, LIST, {"first": 5})
    [error] = body["errors"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "internal_error", "status": 500}
    assert "asyncpg" not in str(body)


async def test_parse_and_validation_are_cached(client: httpx.AsyncClient, app: FastAPI) -> None:
    query = "query Cached { customers(first: 1) { edges { cursor } } }"
    # POST: Kehu's executor parses and validates a query string once.
    executor = app.state.graphql_executor
    await gql(client, query)
    hits, misses = executor.cache_info().hits, executor.cache_info().misses
    await gql(client, query)
    await gql(client, query)
    assert executor.cache_info().hits == hits + 2
    assert executor.cache_info().misses == misses
    # GET: strawberry's router, with its ValidationCache.
    cache: Any = ValidationCache().cached_validate_document
    headers = {"accept": "application/json"}
    await client.get("/graphql", params={"query": query}, headers=headers)
    hits = cache.cache_info().hits
    for _ in range(2):
        response = await client.get("/graphql", params={"query": query}, headers=headers)
        assert "errors" not in response.json()
    assert cache.cache_info().hits == hits + 2


async def test_integrity_error_is_a_conflict(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def racing(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError("INSERT INTO customers ...", {}, Exception("duplicate key"))

    monkeypatch.setattr(service, "create_customer", racing)
    body = await gql(client, CREATE, {"input": customer_input()})
    assert error_codes(body) == ["conflict"]
    assert "INSERT" not in str(body)
