"""Hostile input and HTTP semantics: every bad request is a 4xx problem, never a 500, and nothing
stored is lost or half-written."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
import pytest
import structlog
from sqlalchemy import select

from app.customers.models import Customer
from app.db import read_connection
from tests.fixtures.api import assert_problem, count_customers, count_events
from tests.fixtures.factories import bearer, customer_body

JSON = {"content-type": "application/json"}


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


async def post_raw(client: httpx.AsyncClient, url: str, text: str | bytes) -> httpx.Response:
    return await client.post(url, content=text, headers=JSON)


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


async def stored_names() -> set[str | None]:
    async with read_connection() as session:
        rows = await session.execute(select(Customer.first_name))
        return {row[0] for row in rows}


# --- hostile JSON on the write paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_attributes", "field"),
    [
        ('{"score": "\\ud800"}', "body.attributes.score"),
        ('{"score": Infinity}', "body.attributes.score"),
        ('{"score": -Infinity}', "body.attributes.score"),
        ('{"score": NaN}', "body.attributes.score"),
        ('{"score": 1e400}', "body.attributes.score"),
        ('{"score": ["ok", "a\\u0000"]}', "body.attributes.score.1"),
        ('{"bad\\u0000key": 1}', "body.attributes.bad\\u0000key"),
        ('{"score": ' + deep(40) + "}", "body.attributes.score" + ".0" * 30),
    ],
)
async def test_hostile_attributes_are_field_errors(
    client: httpx.AsyncClient, raw_attributes: str, field: str
) -> None:
    text = '{"first_name": "Wei", "attributes": ' + raw_attributes + "}"
    body = assert_problem(await post_raw(client, "/v1/customers", text), 422, "validation_failed")
    assert field in fields(body), body
    assert await count_customers() == 0


async def test_nul_in_tags_and_text_on_post_and_patch(client: httpx.AsyncClient) -> None:
    for override in ({"tags": ["ok", "a\x00"]}, {"notes": "x\x00"}, {"region": "\x00"}):
        response = await client.post("/v1/customers", json=customer_body(**override))
        body = assert_problem(response, 422, "validation_failed")
        assert any(f.startswith("body." + next(iter(override))) for f in fields(body)), body
    assert await count_customers() == 0

    created = await client.post("/v1/customers", json=customer_body())
    url = created.headers["location"]
    for patch in ({"tags": ["a\x00"]}, {"notes": "x\x00"}, {"attributes": {"k": "\x00"}}):
        assert_problem(await client.patch(url, json=patch), 422, "validation_failed")
    surrogate = await post_raw(client, url, '{"city": "\\udfff"}')  # wrong method: 405 first
    assert surrogate.status_code == 405
    patched = await client.patch(url, content='{"city": "\\udfff"}', headers=JSON)
    assert "body.city" in fields(assert_problem(patched, 422, "validation_failed"))
    after = (await client.get(url)).json()
    assert after["version"] == 1
    assert after["tags"] == ["outdoor"]
    assert after["city"] == "Shanghai"


async def test_unparseable_bodies_are_4xx(client: httpx.AsyncClient) -> None:
    for text in (
        '{"first_name": ' + deep(100_000) + "}",  # RecursionError in the json module
        b'{"first_name": "\xff"}',  # invalid UTF-8
        b'{"first_name": "\xed\xa0\x80"}',  # an encoded surrogate is invalid UTF-8 too
        '{"first_name": "x", "attributes": {"n": ' + "9" * 5000 + "}}",  # over the digit limit
    ):
        for url in ("/v1/customers", "/v1/customers/batch"):
            body = assert_problem(await post_raw(client, url, text), 422, "validation_failed")
            assert fields(body) == {"body"}
    deep_rest = '{"first_name": "x", "attributes": {"a": ' + deep(500) + "}}"
    body = assert_problem(
        await post_raw(client, "/v1/customers", deep_rest), 422, "validation_failed"
    )
    assert any(f.startswith("body.attributes.a") for f in fields(body))
    assert await count_customers() == 0


async def test_batch_isolates_a_hostile_item(client: httpx.AsyncClient) -> None:
    items = [
        '{"first_name": "good1", "external_id": "g-1"}',
        '{"first_name": "bad", "attributes": {"score": Infinity}}',
        '{"first_name": "bad\\u0000"}',
        '{"first_name": "bad", "tags": ["\\ud800"]}',
        '{"first_name": "bad", "attributes": {"a": ' + deep(60) + "}}",
        '{"first_name": "good2", "external_id": "g-2"}',
    ]
    response = await post_raw(client, "/v1/customers/batch", '{"items": [' + ",".join(items) + "]}")
    assert response.status_code == 200, response.text
    result = response.json()
    assert [r["status"] for r in result["results"]] == [
        "created",
        "error",
        "error",
        "error",
        "error",
        "created",
    ]
    assert result["errors"] == 4
    error_fields = [{e["field"] for e in r["error"]["errors"]} for r in result["results"][1:5]]
    assert "attributes.score" in error_fields[0]
    assert "first_name" in error_fields[1]
    assert "tags.0" in error_fields[2]
    assert await stored_names() == {"good1", "good2"}
    for r in (result["results"][0], result["results"][5]):
        assert (await client.get(f"/v1/customers/{r['id']}")).status_code == 200


async def test_field_error_locates_model_level_errors() -> None:
    from pydantic import ValidationError, model_validator

    from app.core.schemas import InputModel, field_error

    class Window(InputModel):
        start: int
        end: int

        @model_validator(mode="after")
        def _ordered(self) -> "Window":
            if self.end < self.start:
                raise field_error("end", "must not be before start", self.end)
            return self

    with pytest.raises(ValidationError) as caught:
        Window.model_validate({"start": 2, "end": 1})
    [error] = caught.value.errors()
    assert error["loc"] == ("end",)
    assert error["msg"] == "Value error, must not be before start"


# --- unexpected errors --------------------------------------------------------------------------


async def test_unexpected_error_is_a_500_problem_with_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.customers import service

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError('relation "customers" does not exist (asyncpg)')

    monkeypatch.setattr(service, "list_customers", broken)
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        response = await client.get("/v1/customers", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500, "internal_error")
    assert response.headers["x-request-id"] == "boom-1"
    assert body["request_id"] == "boom-1"
    assert "asyncpg" not in response.text
    errors = [e for e in logs if e["event"] == "unhandled_exception"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "boom-1"
    assert errors[0]["log_level"] == "error"

    # A failure after the write. With an Idempotency-Key the request is one transaction (the
    # stored answer is part of it): rolled back, nothing stored, and the retry runs afresh.
    def broken_view(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("view failed")

    monkeypatch.setattr(service, "view", broken_view)
    body = customer_body()
    keyed = {"Idempotency-Key": "create-1"}
    failed = await client.post("/v1/customers", json=body, headers=keyed)
    assert_problem(failed, 500, "internal_error")
    assert await count_customers() == 0
    assert await count_events() == 0
    # Without a key a create is one statement, committed as it runs: the customer and its event
    # are stored together (never one without the other) although the answer failed, as when an
    # answer is lost on the way; the retry says so.
    failed = await client.post("/v1/customers", json=body)
    assert_problem(failed, 500, "internal_error")
    assert (await count_customers(), await count_events()) == (1, 1)
    monkeypatch.undo()
    retried = await client.post("/v1/customers", json=body, headers=keyed)
    assert_problem(retried, 409, "external_id_taken")


# --- GraphQL transport errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '"x"',
        "1",
        "null",
        "{not json",
        "{}",
        '{"query": 1}',
        '{"query": ""}',
        '{"query": "{ __typename }", "variables": 1}',
        '{"query": "{ __typename }", "variables": []}',
        '{"query": "{ __typename }", "operationName": 5}',
        '{"query": "{ __typename }", "extensions": "x"}',
        '{"query": "query($x: JSON) { __typename }", "variables": {"x": ' + deep(5000) + "}}",
        '{"query": "query($x: JSON) { __typename }", "variables": {"x": ' + deep(50) + "}}",
        # a lone surrogate reached the database through a query argument (masked 500)
        '{"query": "query($q: String) { customers(first: 1, filter: {q: $q}) { edges { cursor } } }", '
        '"variables": {"q": "x\\ud800"}}',
        '{"query": "{ __typename }", "variables": {"\\udfff": 1}}',
    ],
)
async def test_graphql_bad_bodies_are_400_problems(client: httpx.AsyncClient, text: str) -> None:
    assert_problem(await post_raw(client, "/graphql", text), 400, "invalid_request")


async def test_graphql_wrong_content_type_and_method(client: httpx.AsyncClient) -> None:
    query = json.dumps({"query": "{ __typename }"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = await client.post(
            "/graphql", content=query, headers={"content-type": content_type}
        )
        assert_problem(response, 415, "unsupported_media_type")
    mutation = 'mutation { deleteCustomer(id: "x") { deletedId } }'
    over_get = await client.get("/graphql", params={"query": mutation})
    assert_problem(over_get, 405, "method_not_allowed")
    assert over_get.headers["allow"] == "POST"
    bad_vars = await client.get("/graphql", params={"query": "{ __typename }", "variables": "[1]"})
    assert_problem(bad_vars, 400, "invalid_request")
    no_query = await client.get("/graphql", headers={"accept": "application/json"})
    assert_problem(no_query, 400, "invalid_request")
    ok = await client.post("/graphql", content=query, headers={"content-type": "application/json"})
    assert ok.json() == {"data": {"__typename": "Query"}}


# --- HTTP semantics -----------------------------------------------------------------------------


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    text = json.dumps(customer_body())
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        response = await client.post("/v1/customers", content=text, headers=headers)
        assert_problem(response, 415, "unsupported_media_type")
    created = await client.post(
        "/v1/customers", content=text, headers={"content-type": "application/merge-patch+json"}
    )
    assert created.status_code == 201
    url = created.headers["location"]
    patch = await client.patch(
        url, content='{"city": "Xian"}', headers={"content-type": "text/csv"}
    )
    assert_problem(patch, 415, "unsupported_media_type")
    assert (await client.get(url)).json()["city"] == "Shanghai"
    assert await count_customers() == 1


async def test_unknown_query_parameters_are_400(client: httpx.AsyncClient) -> None:
    await client.post("/v1/customers", json=customer_body())
    response = await client.get("/v1/customers", params={"contry": "CN"})
    body = assert_problem(response, 400, "unknown_parameter")
    assert "contry" in body["detail"]
    assert "country" in body["detail"]
    ok = await client.get(
        "/v1/customers",
        params={"country": "CN", "created_at[gte]": "2020-01-01T00:00:00Z", "tag": "outdoor"},
    )
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["data"]) == 1
    assert_problem(await client.get("/v1/events", params={"limt": 5}), 400, "unknown_parameter")
    assert_problem(
        await client.post("/v1/customers", params={"dry_run": 1}, json=customer_body()),
        400,
        "unknown_parameter",
    )
    assert await count_customers() == 1


async def test_head_answers_like_get_without_body(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/customers", json=customer_body())
    for url in ("/healthz", "/readyz", "/v1/customers", created.headers["location"]):
        get = await client.get(url)
        head = await client.head(url)
        assert head.status_code == get.status_code == 200, url
        assert head.content == b""
        for name in ("content-type", "content-length", "etag"):
            assert head.headers.get(name) == get.headers.get(name), (url, name)
        assert head.headers["x-request-id"]
    assert_problem(await client.get("/v1/customers", params={"limit": 0}), 422, "validation_failed")
    missing = await client.head("/v1/customers/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.content == b""
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not any("head" in ops for ops in paths.values())


async def test_if_none_match_answers_304(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/customers", json=customer_body())
    url, current = created.headers["location"], created.headers["etag"]
    for header in (current, f"W/{current}", f'"v99", {current}', "*"):
        response = await client.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == current
    assert (await client.head(url, headers={"If-None-Match": current})).status_code == 304
    changed = await client.get(url, headers={"If-None-Match": '"v99"'})
    assert changed.status_code == 200
    assert changed.json()["version"] == 1


async def test_if_match_is_strong(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/customers", json=customer_body())
    url, current = created.headers["location"], created.headers["etag"]
    weak = await client.patch(url, json={"city": "Xian"}, headers={"If-Match": f"W/{current}"})
    assert_problem(weak, 412, "version_mismatch")
    assert_problem(
        await client.delete(url, headers={"If-Match": f"W/{current}"}), 412, "version_mismatch"
    )
    assert (await client.get(url)).json()["city"] == "Shanghai"
    strong = await client.patch(url, json={"city": "Xian"}, headers={"If-Match": current})
    assert strong.status_code == 200


# --- CORS ---------------------------------------------------------------------------------------


@asynccontextmanager
async def cors_app_client(origins: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client of an app built with these CORS origins (None: the default)."""
    from asgi_lifespan import LifespanManager

    from app.core.config import Settings
    from app.main import create_app

    settings = Settings(log_json=True, log_level="warning")
    if origins is not None:
        settings = Settings(log_json=True, log_level="warning", cors_origins=origins)
    application = create_app(settings)
    async with (
        LifespanManager(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://kehu.test"
        ) as http,
    ):
        yield http


PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "authorization, content-type, if-match, idempotency-key",
}


async def test_cors_preflight_and_exposed_headers(database_url: str, admin_key: str) -> None:
    async with cors_app_client("https://app.example.com, https://admin.example.com") as http:
        preflight = await http.options("/v1/customers/x", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        allowed_methods = preflight.headers["access-control-allow-methods"]
        for method in ("GET", "POST", "PATCH", "DELETE", "HEAD"):
            assert method in allowed_methods
        allowed = preflight.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "idempotency-key", "if-match"):
            assert header in allowed
        for header in ("if-none-match", "x-request-id"):
            assert header in allowed

        actual = await http.get(
            "/v1/customers",
            headers={"Origin": "https://admin.example.com", **bearer(admin_key)},
        )
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == "https://admin.example.com"
        exposed = {
            h.strip().lower() for h in actual.headers["access-control-expose-headers"].split(",")
        }
        assert exposed >= {
            "etag",
            "x-request-id",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "retry-after",
            "idempotent-replayed",
            "location",
        }
        # errors carry CORS headers too, so a browser can read the problem
        denied = await http.get("/v1/customers", headers={"Origin": "https://app.example.com"})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == "https://app.example.com"

        evil = {**PREFLIGHT, "Origin": "https://evil.example.com"}
        refused = await http.options("/v1/customers", headers=evil)
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        simple = await http.get("/healthz", headers={"Origin": "https://evil.example.com"})
        assert simple.status_code == 200
        assert not any(h.startswith("access-control-") for h in simple.headers)


async def test_cors_is_off_by_default(database_url: str) -> None:
    from app.core.config import Settings

    assert Settings().cors_origins == []
    assert Settings(
        _env_file=None, cors_origins="https://a.example, https://b.example"
    ).cors_origins == [
        "https://a.example",
        "https://b.example",
    ]
    async with cors_app_client(None) as http:
        preflight = await http.options("/v1/customers", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in preflight.headers
        simple = await http.get("/healthz", headers={"Origin": "https://app.example.com"})
        assert not any(h.startswith("access-control-") for h in simple.headers)


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.config import Settings

    monkeypatch.setenv("KEHU_CORS_ORIGINS", "https://app.example.com,https://admin.example.com")
    assert Settings().cors_origins == ["https://app.example.com", "https://admin.example.com"]
    monkeypatch.setenv("KEHU_CORS_ORIGINS", "")
    assert Settings().cors_origins == []
