import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select

from app.api import deps
from app.core.config import Settings
from app.customers.models import Customer
from app.db import read_connection
from app.main import create_app
from tests.conftest import customer_body

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:kehu:problem:{code}"
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def count_customers() -> int:
    async with read_connection() as session:
        return int((await session.execute(select(func.count()).select_from(Customer))).scalar())


# --- auth and scopes ---------------------------------------------------------------------------


async def test_missing_and_invalid_key_are_401(anon) -> None:
    response = await anon.get("/v1/customers")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    bad = await anon.get("/v1/customers", headers={"Authorization": "Bearer kehu_nope"})
    assert_problem(bad, 401, "invalid_api_key")


async def test_missing_scope_is_403(anon, make_key) -> None:
    key = await make_key("customers:read")
    headers = {"Authorization": f"Bearer {key}"}
    assert (await anon.get("/v1/customers", headers=headers)).status_code == 200
    denied = await anon.post("/v1/customers", json=customer_body(), headers=headers)
    assert_problem(denied, 403, "missing_scope")
    assert await count_customers() == 0
    assert_problem(await anon.get("/v1/events", headers=headers), 403, "missing_scope")


async def test_request_id_is_returned_and_kept(client) -> None:
    fresh = await client.get("/v1/customers")
    assert len(fresh.headers["x-request-id"]) == 32
    kept = await client.get("/v1/customers", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = await client.get("/v1/customers", headers={"X-Request-ID": "bad id!"})
    assert replaced.headers["x-request-id"] != "bad id!"


# --- problem shapes ----------------------------------------------------------------------------


async def test_unknown_route_and_method(client) -> None:
    assert_problem(await client.get("/v1/nowhere"), 404, "not_found")
    assert_problem(await client.put("/v1/customers"), 405, "method_not_allowed")


async def test_malformed_json_is_422(client) -> None:
    response = await client.post(
        "/v1/customers", content=b"{not json", headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"]


async def test_unknown_field_and_wrong_types_are_422(client) -> None:
    unknown = await client.post("/v1/customers", json=customer_body(shoe_size=42))
    body = assert_problem(unknown, 422, "validation_failed")
    assert any(e["field"].endswith("shoe_size") for e in body["errors"])
    wrong = await client.post("/v1/customers", json=customer_body(tags="outdoor", birth_date=5))
    fields = {e["field"] for e in assert_problem(wrong, 422, "validation_failed")["errors"]}
    assert any(f.endswith("tags") for f in fields)
    assert any(f.endswith("birth_date") for f in fields)
    assert await count_customers() == 0


async def test_nul_bytes_are_refused(client) -> None:
    response = await client.post("/v1/customers", json=customer_body(first_name="We\x00i"))
    assert_problem(response, 422, "validation_failed")
    attrs = await client.post("/v1/customers", json=customer_body(attributes={"k": "a\x00"}))
    assert_problem(attrs, 422, "validation_failed")
    query = await client.get("/v1/customers", params={"city": "a\x00b"})
    assert_problem(query, 422, "validation_failed")


async def test_body_over_one_mib_is_413(client) -> None:
    big = json.dumps(customer_body(notes="x" * (1024 * 1024 + 10))).encode()
    response = await client.post(
        "/v1/customers", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await client.post(
        "/v1/customers", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(streamed, 413, "payload_too_large")
    assert await count_customers() == 0


# --- pagination ---------------------------------------------------------------------------------


async def test_limit_bounds_and_bad_cursor(client) -> None:
    for limit in (0, 101, -1):
        response = await client.get("/v1/customers", params={"limit": limit})
        assert_problem(response, 422, "validation_failed")
    assert (await client.get("/v1/customers", params={"limit": 100})).status_code == 200
    for cursor in ("garbage!!", "bm90IGpzb24", "WyJ4IiwieSJd"):
        response = await client.get("/v1/customers", params={"cursor": cursor})
        assert_problem(response, 400, "invalid_cursor")


async def test_cursor_paging_walks_every_row_once(client) -> None:
    items = [{"first_name": f"p{i:02d}", "external_id": f"p-{i}"} for i in range(23)]
    assert (await client.post("/v1/customers/batch", json={"items": items})).status_code == 200
    for sort in ("-created_at", "created_at", "updated_at"):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 5, "sort": sort} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/customers", params=params)).json()
            seen += [c["id"] for c in page["data"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 5
        assert len(seen) == 23
        assert len(set(seen)) == 23
        if sort == "-created_at":
            other = (await client.get("/v1/customers", params={"limit": 5})).json()
            wrong = await client.get(
                "/v1/customers", params={"sort": "created_at", "cursor": other["next_cursor"]}
            )
            assert_problem(wrong, 400, "invalid_cursor")


# --- idempotency -------------------------------------------------------------------------------


async def test_idempotency_key_replays(client) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = await client.post("/v1/customers", json=customer_body(), headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    second = await client.post("/v1/customers", json=customer_body(), headers=headers)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["location"] == first.headers["location"]
    assert await count_customers() == 1
    other = await client.post("/v1/customers", json=customer_body(first_name="Li"), headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    assert await count_customers() == 1


async def test_invalid_idempotency_key(client) -> None:
    response = await client.post(
        "/v1/customers", json=customer_body(), headers={"Idempotency-Key": "k" * 256}
    )
    assert_problem(response, 400, "invalid_idempotency_key")


async def test_concurrent_same_key_creates_once(client) -> None:
    headers = {"Idempotency-Key": "race-1"}
    responses = await asyncio.gather(
        *(client.post("/v1/customers", json=customer_body(), headers=headers) for _ in range(2))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([201, 201], [201, 409]), statuses
    created = [r for r in responses if r.status_code == 201]
    if len(created) == 2:
        assert any(r.headers.get("idempotent-replayed") == "true" for r in created)
    else:
        conflict = next(r for r in responses if r.status_code == 409)
        assert_problem(conflict, 409, "idempotency_key_in_use")
        assert conflict.headers["retry-after"] == "1"
    assert await count_customers() == 1


# --- ETag / If-Match ---------------------------------------------------------------------------


async def test_if_match(client) -> None:
    created = await client.post("/v1/customers", json=customer_body())
    url = created.headers["location"]
    stale = created.headers["etag"]
    ok = await client.patch(url, json={"city": "Beijing"}, headers={"If-Match": stale})
    assert ok.status_code == 200
    current = ok.headers["etag"]
    assert current == '"v2"'
    again = await client.patch(url, json={"city": "Xian"}, headers={"If-Match": stale})
    assert_problem(again, 412, "version_mismatch")
    assert_problem(await client.delete(url, headers={"If-Match": stale}), 412, "version_mismatch")
    assert_problem(
        await client.patch(url, json={}, headers={"If-Match": "nope"}), 412, "invalid_if_match"
    )
    assert (await client.get(url)).json()["city"] == "Beijing"
    assert (await client.delete(url, headers={"If-Match": current})).status_code == 204


# --- rate limits -------------------------------------------------------------------------------


@pytest.fixture
async def limited_client(database_url: str, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    deps.caller_cache.clear()
    application: FastAPI = create_app(
        Settings(log_json=True, log_level="warning", rate_limit="3/minute")
    )
    async with (
        LifespanManager(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://kehu.test",
            headers={"Authorization": f"Bearer {admin_key}"},
        ) as http,
    ):
        yield http
    deps.reset_rate_limiter()


async def test_rate_limit(limited_client) -> None:
    remaining = []
    for _ in range(3):
        response = await limited_client.get("/v1/customers")
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "3"
        remaining.append(int(response.headers["ratelimit-remaining"]))
    assert remaining == [2, 1, 0]
    limited = await limited_client.get("/v1/customers")
    assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-remaining"] == "0"
    assert int(limited.headers["ratelimit-reset"]) <= 60


async def test_unknown_customer_id_type(client) -> None:
    assert_problem(await client.get("/v1/customers/not-a-uuid"), 422, "validation_failed")
    assert (await client.get(f"/v1/customers/{uuid.uuid4()}")).status_code == 404


async def test_api_key_creation_refuses_idempotency_key(client) -> None:
    """A replay would have to store the new key's secret, which is never stored."""
    response = await client.post(
        "/v1/api-keys",
        json={"name": "shop", "scopes": ["customers:read"]},
        headers={"Idempotency-Key": "key-1"},
    )
    assert_problem(response, 400, "idempotency_not_supported")
    keys = (await client.get("/v1/api-keys")).json()["data"]
    assert [k["name"] for k in keys] == ["test"]
    created = await client.post("/v1/api-keys", json={"name": "shop", "scopes": ["admin"]})
    assert created.status_code == 201
    assert created.json()["key"].startswith("kehu_")
