import asyncio

from app.db import read_session, unit_of_work
from app.events import service as events
from app.events.models import Event
from tests.conftest import customer_body


async def _feed(client, **params) -> dict:
    response = await client.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _settled_feed(client, expected: int, headers=None, **params) -> dict:
    """The feed once it shows ``expected`` events. It holds back rows newer than the oldest write
    transaction running anywhere on the server, so activity of other databases can delay them."""
    for _ in range(100):
        response = await client.get("/v1/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        if len(response.json()["data"]) >= expected:
            return response.json()
        await asyncio.sleep(0.1)
    return response.json()


async def test_customer_lifecycle_events(client) -> None:
    created = (await client.post("/v1/customers", json=customer_body())).json()
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
    assert feed["data"][0]["data"]["email"] == "wei.wang@example.com"
    assert feed["data"][1]["changes"] == {
        "city": ["Shanghai", "Beijing"],
        "email": ["wei.wang@example.com", "new@example.com"],
    }
    assert feed["data"][2]["changes"] is None


async def test_feed_paging_and_types(client) -> None:
    for i in range(5):
        body = customer_body(email=f"e{i}@example.com", phone=None)
        created = (await client.post("/v1/customers", json=body)).json()
        await client.patch(f"/v1/customers/{created['id']}", json={"city": f"c{i}"})
    await _settled_feed(client, 10)
    seen, after = [], None
    while True:
        page = await _feed(client, limit=3, **({"after": after} if after else {}))
        seen += [e["id"] for e in page["data"]]
        after = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(seen) == len(set(seen)) == 10
    empty = await _feed(client, after=after)
    assert empty["data"] == []
    assert empty["next_cursor"] == after
    updated = await _feed(client, types="customer.updated")
    assert len(updated["data"]) == 5
    assert {e["type"] for e in updated["data"]} == {"customer.updated"}
    bad = await client.get("/v1/events", params={"after": "!!!"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_cursor"


async def test_pii_redacted_without_pii_read(client, make_key) -> None:
    created = (await client.post("/v1/customers", json=customer_body())).json()
    await client.patch(f"/v1/customers/{created['id']}", json={"email": "x@example.com"})
    key = await make_key("events:read")
    feed = await _settled_feed(client, 2, headers={"Authorization": f"Bearer {key}"})
    data = feed["data"]
    assert data[0]["data"]["email"] == "[redacted]"
    assert data[0]["data"]["phone"] == "[redacted]"
    assert data[0]["data"]["first_name"] == "Wei"
    assert data[1]["changes"]["email"] == ["[redacted]", "[redacted]"]
    assert "x@example.com" not in str(feed)


async def test_uncommitted_event_is_not_in_feed_until_commit(client) -> None:
    async with unit_of_work() as session:
        await events.record(session, "test.probe", customer_id=None, data={"n": 1})
        async with read_session() as other:
            rows = (await other.execute(Event.__table__.select())).all()
            assert rows == []
        assert (await _feed(client))["data"] == []
    feed = await _settled_feed(client, 1)
    assert [e["type"] for e in feed["data"]] == ["test.probe"]
