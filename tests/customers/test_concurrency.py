"""Concurrent writers against one PostgreSQL: row locks, unique indexes and event ordering hold."""

import asyncio

import httpx2 as httpx

from app.db import read_connection
from app.events.models import Event
from tests.fixtures.events import wait_stamped
from tests.fixtures.factories import create_customer, customer_body


async def test_concurrent_patches_with_the_same_if_match_let_exactly_one_win(
    client: httpx.AsyncClient,
) -> None:
    created = await create_customer(client)
    url = f"/v1/customers/{created['id']}"
    responses = await asyncio.gather(
        *(
            client.patch(url, json={"city": f"City {i}"}, headers={"If-Match": '"v1"'})
            for i in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 7
    winner = next(r for r in responses if r.status_code == 200).json()
    assert winner["version"] == 2
    current = (await client.get(url)).json()
    assert current["city"] == winner["city"]


async def test_concurrent_creates_with_one_email_create_one_customer(
    client: httpx.AsyncClient,
) -> None:
    body = customer_body(phone=None, external_id=None)  # only the email is shared
    responses = await asyncio.gather(*(client.post("/v1/customers", json=body) for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"email_taken"}
    listed = await client.get("/v1/customers", params={"email": body["email"]})
    assert len(listed.json()["data"]) == 1


async def test_concurrent_updates_get_gapless_per_customer_sequences(
    client: httpx.AsyncClient,
) -> None:
    created = await create_customer(client)
    url = f"/v1/customers/{created['id']}"
    responses = await asyncio.gather(
        *(client.patch(url, json={"attributes": {f"k{i}": i}}) for i in range(10))
    )
    assert {r.status_code for r in responses} == {200}
    final = (await client.get(url)).json()
    assert final["version"] == 11
    assert final["attributes"] == {f"k{i}": i for i in range(10)}
    await wait_stamped()
    async with read_connection() as session:
        rows = (
            await session.execute(
                Event.__table__.select()
                .where(Event.customer_id == created["id"])
                .order_by(Event.position)
            )
        ).all()
    # Sequences are 1..11 with no gap or repeat, and feed positions increase with them.
    assert [row.sequence for row in rows] == list(range(1, 12))
    versions = [row.data["version"] for row in rows]
    assert versions == list(range(1, 12))
