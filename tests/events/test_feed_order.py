"""The feed under concurrent writers: per-customer order, nothing skipped, stable cursors."""

import asyncio
import itertools
import random
import uuid
from collections import defaultdict
from typing import Any

import httpx2 as httpx

from app.core.auth import Caller
from app.customers import service as customers
from app.customers.schemas import CustomerCreate, CustomerUpdate
from app.db import engine as db
from app.db import read_connection, unit_of_work
from app.events import service as events
from tests.fixtures.events import all_events, wait_stamped
from tests.fixtures.factories import customer_body

ADMIN = Caller(key_id=uuid.uuid4(), name="test", scopes=frozenset({"admin"}))
CUSTOMERS = 20
WRITERS = 16
UPDATES = 2000
READERS = 3


async def _page(cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str, bool]:
    async with read_connection() as session:
        rows, next_cursor, has_more = await events.read_feed(
            session, ADMIN, cursor=cursor, types=[], customer_id=None, limit=limit
        )
    return [row.model_dump() for row in rows], next_cursor, has_more


async def _read_all(limit: int, client: httpx.AsyncClient | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        if client is None:
            page, cursor, has_more = await _page(cursor, limit)
        else:
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            body = (await client.get("/v1/events", params=params)).json()
            page, cursor, has_more = body["data"], body["next_cursor"], body["has_more"]
        rows += page
        if not page:
            assert not has_more
            return rows


async def _create(email: str) -> uuid.UUID:
    async with unit_of_work() as session:
        row = await customers.create_customer(
            session, ADMIN, CustomerCreate(**customer_body(email=email, phone=None))
        )
        customer_id: uuid.UUID = row.id
        return customer_id


async def test_concurrent_writers_and_readers_see_commit_order(
    client: httpx.AsyncClient, database_url: str
) -> None:
    # 16 writers need 16 connections at once, plus the readers.
    await db.dispose()
    db.configure(db.create_engine(database_url, pool_size=WRITERS + READERS + 4))
    ids = [await _create(f"c{i}@example.com") for i in range(CUSTOMERS)]
    late_customer = await _create("late@example.com")

    # A transaction that stays open while everything else commits: its event must not be skipped.
    late_open, late_release = asyncio.Event(), asyncio.Event()

    async def late_writer() -> None:
        async with unit_of_work() as session:
            await customers.update_customer(
                session, ADMIN, late_customer, CustomerUpdate(city="Late")
            )
            late_open.set()
            await late_release.wait()

    counter = iter(range(UPDATES))
    rng = random.Random(7)

    async def writer() -> None:
        for n in counter:
            async with unit_of_work() as session:
                await customers.update_customer(
                    session, ADMIN, rng.choice(ids), CustomerUpdate(attributes={"n": n})
                )

    writing_done = asyncio.Event()
    saved: list[tuple[str | None, list[str]]] = []

    async def reader(r: int) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        cursor = None
        limit = [5, 50, 13][r]
        while True:
            finished = writing_done.is_set()
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            response = await client.get("/v1/events", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            if body["data"] and len(saved) < 40:
                saved.append((cursor, [e["id"] for e in body["data"]]))
            seen += body["data"]
            cursor = body["next_cursor"]
            if finished and not body["data"]:
                return seen
            await asyncio.sleep(0.005 if body["has_more"] else 0.02)

    late = asyncio.create_task(late_writer())
    await late_open.wait()
    readers = [asyncio.create_task(reader(r)) for r in range(READERS)]
    await asyncio.gather(*(writer() for _ in range(WRITERS)))
    # Readers have passed positions stamped after the late transaction began; now it commits.
    await asyncio.sleep(0.3)
    late_release.set()
    await late
    await wait_stamped()
    writing_done.set()
    seen_by_readers = await asyncio.gather(*readers)

    stored = await all_events()
    total = CUSTOMERS + 1 + UPDATES + 1
    assert len(stored) == total
    assert [row.position for row in stored] == list(range(1, total + 1))
    stored_ids = [str(row.id) for row in stored]

    for limit, client_or_none in ((1, None), (7, client), (100, client)):
        feed = await _read_all(limit, client_or_none)
        _check_feed(feed, total, stored_ids, limit)
    for seen in seen_by_readers:
        # A reader that paged while writers ran saw exactly the final feed: nothing skipped (the
        # late event included), nothing twice, in the same order.
        assert [e["id"] for e in seen] == stored_ids
    late_event = next(
        e
        for e in seen_by_readers[0]
        if e["customer_id"] == str(late_customer) and e["sequence"] == 2
    )
    assert late_event["position"] == total  # committed last, so stamped last

    # Stable cursors: a saved cursor read again gives the same page (or, if that page was not
    # full then, the same rows followed by what arrived later).
    assert saved
    for cursor, page_ids in saved:
        again, _, _ = await _page(cursor, len(page_ids))
        assert [str(e["id"]) for e in again] == page_ids


def _check_feed(feed: list[dict[str, Any]], total: int, stored_ids: list[str], limit: int) -> None:
    ids = [str(e["id"]) for e in feed]
    assert len(ids) == total, limit
    assert ids == stored_ids, limit  # nothing missing or duplicated, same order every time
    positions = [e["position"] for e in feed]
    assert all(a < b for a, b in itertools.pairwise(positions)), limit
    sequences: dict[str, list[int]] = defaultdict(list)
    versions: dict[str, list[int]] = defaultdict(list)
    for e in feed:
        sequences[str(e["customer_id"])].append(e["sequence"])
        versions[str(e["customer_id"])].append(e["data"]["version"])
    assert len(sequences) == CUSTOMERS + 1
    for customer, seqs in sequences.items():
        assert seqs == list(range(1, len(seqs) + 1)), (limit, customer)
        assert versions[customer] == seqs, (limit, customer)
