"""API keys over REST: paging, no idempotent creation, and never revoking the last active admin
key."""

import asyncio

import httpx2 as httpx

from tests.fixtures.api import assert_problem
from tests.fixtures.factories import KeyFactory, bearer


async def _key_id(client: httpx.AsyncClient, name: str) -> str:
    keys = (await client.get("/v1/api-keys", params={"limit": 100})).json()["data"]
    return str(next(k["id"] for k in keys if k["name"] == name))


async def test_the_last_active_admin_key_cannot_be_revoked(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    own = await _key_id(client, "test")
    refused = await client.delete(f"/v1/api-keys/{own}")
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "last_admin_key"
    reader = await make_key("customers:read", name="reader")
    assert (
        await client.delete(f"/v1/api-keys/{await _key_id(client, 'reader')}")
    ).status_code == 204
    # the revoked key is refused
    assert (await client.get("/v1/customers", headers=bearer(reader))).status_code == 401
    await make_key("admin", name="second-admin")
    assert (
        await client.delete(f"/v1/api-keys/{await _key_id(client, 'second-admin')}")
    ).status_code == 204
    assert (await client.delete(f"/v1/api-keys/{own}")).status_code == 409


async def test_two_admin_keys_revoking_each_other_at_once_leave_one(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    current = "test"
    for attempt in range(5):
        first_name, second_name = f"a{attempt}", f"b{attempt}"
        first = await make_key("admin", name=first_name)
        second = await make_key("admin", name=second_name)
        first_id = await _key_id(client, first_name)
        second_id = await _key_id(client, second_name)
        # Leave exactly these two admin keys active.
        retire = await client.delete(
            f"/v1/api-keys/{await _key_id(client, current)}",
            headers=bearer(first),
        )
        assert retire.status_code == 204
        responses = await asyncio.gather(
            client.delete(f"/v1/api-keys/{second_id}", headers=bearer(first)),
            client.delete(f"/v1/api-keys/{first_id}", headers=bearer(second)),
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses[0] == 204, [r.text for r in responses]
        assert statuses[1] in (401, 409), [r.text for r in responses]
        survivor, current = (
            (first, first_name) if responses[0].status_code == 204 else (second, second_name)
        )
        client.headers.update(bearer(survivor))
        listed = (await client.get("/v1/api-keys", params={"limit": 100})).json()["data"]
        assert sum(1 for k in listed if "admin" in k["scopes"] and k["revoked_at"] is None) == 1


async def test_list_pages_with_signed_cursors(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    for name in ("k1", "k2"):
        await make_key("customers:read", name=name)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/api-keys", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"data", "next_cursor", "has_more"}
        assert len(page["data"]) == 1
        assert "key_hash" not in page["data"][0]
        seen.append(page["data"][0]["name"])
        pages += 1
        assert page["has_more"] is (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == ["test", "k1", "k2"]
    assert pages == 3
    tampered = await client.get("/v1/api-keys", params={"limit": 1, "cursor": "x" + str(cursor)})
    assert tampered.status_code == 400
    assert tampered.json()["code"] == "invalid_cursor"


async def test_api_key_creation_refuses_idempotency_key(client: httpx.AsyncClient) -> None:
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
