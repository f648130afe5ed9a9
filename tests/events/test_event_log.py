import asyncio
from datetime import timedelta
from typing import Any

import httpx2 as httpx

from app.core import clock
from app.core.ids import new_id
from app.db import read_connection, unit_of_work
from app.events import repository
from app.events import service as events
from app.events.models import Event
from tests.fixtures.events import all_events, wait_stamped
from tests.fixtures.factories import PHONE, KeyFactory, bearer, create_customer


async def _feed(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    feed: dict[str, Any] = response.json()
    return feed


async def _settled_feed(
    client: httpx.AsyncClient,
    expected: int,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """The feed once it shows ``expected`` events (the sequencer stamps them just after commit)."""
    for _ in range(100):
        response = await client.get("/v1/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        feed: dict[str, Any] = response.json()
        if len(feed["data"]) >= expected:
            return feed
        await asyncio.sleep(0.1)
    return feed


async def test_customer_lifecycle_events(client: httpx.AsyncClient) -> None:
    created = await create_customer(client)
    url = f"/v1/customers/{created['id']}"
    await client.patch(url, json={"city": "Beijing", "email": "new@example.com"})
    await client.delete(url)
    feed = await _settled_feed(client, 3, customer_id=created["id"])
    assert [e["type"] for e in feed["data"]] == [
        "customer.created",
        "customer.updated",
        "customer.deleted",
    ]
    assert [e["sequence"] for e in feed["data"]] == [1, 2, 3]
    positions = [e["position"] for e in feed["data"]]
    assert positions == sorted(positions)
    assert len(set(positions)) == 3
    assert feed["data"][0]["data"]["email"] == created["email"]
    assert "redacted_fields" not in feed["data"][0]["data"]
    assert feed["data"][1]["changes"] == {
        "city": ["Shanghai", "Beijing"],
        "email": [created["email"], "new@example.com"],
    }
    assert feed["data"][2]["changes"] is None


async def test_feed_paging_and_types(client: httpx.AsyncClient) -> None:
    for i in range(5):
        created = await create_customer(client, email=f"e{i}@example.com", phone=None)
        await client.patch(f"/v1/customers/{created['id']}", json={"city": f"c{i}"})
    await _settled_feed(client, 10)
    seen: list[str] = []
    cursor = None
    while True:
        page = await _feed(client, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen)) == 10
    empty = await _feed(client, cursor=cursor)
    assert empty["data"] == []
    assert empty["has_more"] is False
    assert empty["next_cursor"] == cursor
    updated = await _feed(client, types="customer.updated")
    assert len(updated["data"]) == 5
    assert {e["type"] for e in updated["data"]} == {"customer.updated"}


async def test_empty_feed_hands_out_a_cursor_to_poll_with(client: httpx.AsyncClient) -> None:
    first = await _feed(client)
    assert first["data"] == []
    assert first["has_more"] is False
    assert first["next_cursor"]
    await create_customer(client)
    await wait_stamped()
    polled = await _feed(client, cursor=first["next_cursor"])
    assert [e["type"] for e in polled["data"]] == ["customer.created"]


async def test_tampered_or_foreign_cursor_is_invalid(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await create_customer(client, email=f"t{i}@example.com")
    await wait_stamped()
    cursor = (await _feed(client, limit=1))["next_cursor"]
    assert len((await _feed(client, cursor=cursor))["data"]) == 2
    body, _, signature = cursor.partition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    # A customers-list cursor is signed by this server but carries no feed position.
    foreign = (await client.get("/v1/customers", params={"limit": 1})).json()["next_cursor"]
    assert foreign
    for bad in ("!!!", "abc", body + "." + flipped, body[:-2] + "." + signature, foreign):
        response = await client.get("/v1/events", params={"cursor": bad})
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["code"] == "invalid_cursor"


async def test_pii_redacted_without_pii_read(
    client: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    created = await create_customer(client, birth_date=None)
    await client.patch(
        f"/v1/customers/{created['id']}", json={"email": "x@example.com", "city": "Xi'an"}
    )
    key = await make_key("events:read")
    feed = await _settled_feed(client, 2, headers=bearer(key))
    created_event, updated_event = feed["data"]
    assert created_event["data"]["email"] is None
    assert created_event["data"]["phone"] is None
    assert created_event["data"]["birth_date"] is None
    assert created_event["data"]["first_name"] == "Wei"
    # birth_date had no value, so nothing was withheld there.
    assert created_event["data"]["redacted_fields"] == ["email", "phone"]
    assert updated_event["changes"]["email"] == [None, None]
    assert updated_event["changes"]["city"] == ["Shanghai", "Xi'an"]
    assert updated_event["data"]["redacted_fields"] == ["email", "phone"]
    assert "x@example.com" not in str(feed)
    assert created["email"] not in str(feed)
    assert PHONE not in str(feed)
    # The same feed with pii:read shows the values and no redaction list.
    full = await _settled_feed(client, 2)
    assert full["data"][1]["changes"]["email"] == [created["email"], "x@example.com"]
    assert "redacted_fields" not in full["data"][1]["data"]


async def test_feed_needs_events_read(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    key = await make_key("customers:read")
    response = await client.get("/v1/events", headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["code"] == "missing_scope"


async def test_uncommitted_event_is_not_in_feed_until_commit(client: httpx.AsyncClient) -> None:
    async with unit_of_work() as session:
        await events.record(session, "test.probe", customer_id=None, data={"n": 1})
        async with read_connection() as other:
            rows = (await other.execute(Event.__table__.select())).all()
            assert rows == []
        await asyncio.sleep(0.3)
        assert (await _feed(client))["data"] == []
    feed = await _settled_feed(client, 1)
    assert [e["type"] for e in feed["data"]] == ["test.probe"]
    assert feed["data"][0]["position"] == 1


async def test_purge_keeps_the_feed_and_never_reuses_positions(client: httpx.AsyncClient) -> None:
    now = clock.now()
    async with unit_of_work() as session:
        for i in range(4):
            await repository.append(
                session,
                event_id=new_id(),
                type="test.old",
                customer_id=None,
                occurred_at=now - timedelta(days=100 + i),
                data={"i": i},
                changes=None,
            )
        await events.record(session, "test.recent", customer_id=None, data={})
    await wait_stamped()
    assert [row.position for row in await all_events()] == [1, 2, 3, 4, 5]
    async with unit_of_work() as session:
        assert await events.purge_expired(session) == 4
    feed = await _feed(client)
    assert [e["type"] for e in feed["data"]] == ["test.recent"]
    # Purge everything: the next event still continues after the last position ever handed out.
    async with unit_of_work() as session:
        assert await repository.purge_before(session, clock.now() + timedelta(days=1)) == 1
    async with unit_of_work() as session:
        await events.record(session, "test.after_purge", customer_id=None, data={})
    await wait_stamped()
    assert [row.position for row in await all_events()] == [6]
    after_purge = await _feed(client, cursor=feed["next_cursor"])
    assert [(e["type"], e["position"]) for e in after_purge["data"]] == [("test.after_purge", 6)]
