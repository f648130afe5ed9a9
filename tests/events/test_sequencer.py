"""The sequencer on its own: idle passes, several at once, a database that is down or not migrated."""

import asyncio
import itertools
import uuid
from collections import defaultdict
from contextlib import suppress
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.config import Settings
from app.db import unit_of_work
from app.db.migrations import upgrade
from app.events import service as events
from app.events.repository import stamp_pass
from app.events.sequencer import Sequencer, catch_up, stop_and_wait
from app.main import create_app
from tests.fixtures import database
from tests.fixtures.events import all_events, unstamped, wait_stamped


async def test_a_pass_with_nothing_to_do_stamps_nothing(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await catch_up(conn) == 0
        assert await catch_up(conn) == 0
        assert await conn.fetchval("SELECT last_position FROM event_feed_state") == 0
        await conn.execute(
            "INSERT INTO events (id, type, occurred_at, data) VALUES ($1, 'test.one', now(), '{}')",
            uuid.uuid4(),
        )
        assert await catch_up(conn) == 1
        assert await catch_up(conn) == 0
        assert await conn.fetchval("SELECT last_position FROM event_feed_state") == 1
        assert await conn.fetchval("SELECT position FROM events") == 1
    finally:
        await conn.close()


async def test_two_sequencers_stamp_each_event_exactly_once(database_url: str) -> None:
    customers = [uuid.uuid4() for _ in range(5)]
    first = Sequencer(database_url, poll_interval=0.05, batch_size=7)
    second = Sequencer(database_url, poll_interval=0.05, batch_size=7)
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]

    async def writer(w: int) -> None:
        for i in range(40):
            async with unit_of_work() as session:
                customer = customers[(w + i) % len(customers)] if i % 4 else None
                await events.record(session, "test.w", customer_id=customer, data={"w": w})

    try:
        await asyncio.gather(*(writer(w) for w in range(4)))
        await wait_stamped()
    finally:
        for sequencer, task in zip((first, second), tasks, strict=True):
            await stop_and_wait(sequencer, task)
    rows = await all_events()
    assert len(rows) == 160
    # Contiguous 1..160: a row stamped twice would have moved the counter past 160.
    assert [row.position for row in rows] == list(range(1, 161))
    assert first.stamped + second.stamped == 160
    by_customer: dict[uuid.UUID, list[int]] = defaultdict(list)
    for row in rows:
        if row.customer_id is not None:
            by_customer[row.customer_id].append(row.sequence)
    assert set(by_customer) == set(customers)
    for sequences in by_customer.values():
        assert sequences == list(range(1, len(sequences) + 1))


async def test_sequencer_survives_a_missing_then_unmigrated_database(db_server: str) -> None:
    name = "kehu_test_seq_" + uuid.uuid4().hex[:10]
    url = database.with_database(db_server, name)
    sequencer = Sequencer(url, poll_interval=0.1, max_backoff=0.3)
    task = asyncio.create_task(sequencer.run())
    try:
        await asyncio.sleep(0.5)  # the database does not exist yet
        assert not task.done()
        admin = await database.admin_connection(db_server)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await asyncio.sleep(0.5)  # it exists, but has no tables
        assert not task.done()
        await asyncio.to_thread(upgrade, url)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO events (id, type, occurred_at, data) "
                "VALUES ($1, 'test.one', now(), '{}')",
                uuid.uuid4(),
            )
            for _ in range(100):
                if await conn.fetchval("SELECT position FROM events") is not None:
                    break
                await asyncio.sleep(0.05)
            assert await conn.fetchval("SELECT position FROM events") == 1
        finally:
            await conn.close()
    finally:
        await stop_and_wait(sequencer, task)
        with suppress(Exception):
            await database.drop(db_server, name)
    assert task.done()
    assert task.exception() is None
    assert sequencer.stamped == 1


async def test_a_pass_stamps_a_prefix_per_customer_in_time_order(database_url: str) -> None:
    """Customer c's sequence 1 has the latest time: in a batch of two, its later sequences wait for
    it; a blocked full batch is retried larger; slots follow time, but within c follow sequence."""
    c = uuid.uuid4()
    rows = [("n1", None, None, 0), ("c2", c, 2, 1), ("c3", c, 3, 2), ("n2", None, None, 5)]
    rows.append(("c1", c, 1, 10))
    conn = await asyncpg.connect(database_url)
    try:
        for type_, customer_id, sequence, seconds in rows:
            await conn.execute(
                "INSERT INTO events (id, type, customer_id, sequence, occurred_at, data) "
                "VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), '{}')",
                uuid.uuid4(),
                type_,
                customer_id,
                sequence,
                float(seconds),
            )
        # Oldest two: n1 and c2; c2 waits for c1 (outside the batch), so only n1 is stamped.
        assert await stamp_pass(conn, 2) == (1, 2)
        # Oldest two now c2, c3: both wait; catch_up retries with 4, which holds everything.
        assert await catch_up(conn, 2) == 4
        stamped = await conn.fetch("SELECT type, position FROM events ORDER BY position")
    finally:
        await conn.close()
    # Time order n1, c2, c3, n2, c1 gives c the slots 2, 3, 5, handed out by sequence.
    assert [(r["type"], r["position"]) for r in stamped] == [
        ("n1", 1),
        ("c1", 2),
        ("c2", 3),
        ("n2", 4),
        ("c3", 5),
    ]


async def test_the_app_runs_a_sequencer_unless_told_not_to(database_url: str) -> None:
    for run_sequencer in (False, True):
        app = create_app(Settings(log_level="warning", run_sequencer=run_sequencer))
        async with LifespanManager(app):
            async with unit_of_work() as session:
                await events.record(session, "test.probe", customer_id=None, data={})
            if run_sequencer:
                await wait_stamped()
            else:
                await asyncio.sleep(1.5)  # longer than the poll interval
                assert await unstamped() == 1
    assert [row.position for row in await all_events()] == [1, 2]


# A model of one pass, stated as the feed's promise rather than as the repository computes it:
# the batch is the `size` oldest unstamped rows by (occurred_at, id); a customer's batched rows are
# stamped as far as they are a prefix of its unstamped events; slots follow time, but within a
# customer follow sequence.
Row = tuple[uuid.UUID, uuid.UUID | None, int | None, int]  # id, customer, sequence, seconds


def _model_pass(rows: list[Row], stamped: dict[uuid.UUID, int], size: int) -> dict[uuid.UUID, int]:
    unstamped = sorted((r for r in rows if r[0] not in stamped), key=lambda r: (r[3], r[0]))
    batch = unstamped[:size]
    in_batch = {r[0] for r in batch}
    chosen = [r for r in batch if r[1] is None]
    for customer in {r[1] for r in batch if r[1] is not None}:
        pending = sorted((r for r in unstamped if r[1] == customer), key=lambda r: r[2] or 0)
        for r in pending:
            if r[0] not in in_batch:
                break
            chosen.append(r)
    base = max(stamped.values(), default=0)
    slots = {r[0]: slot for slot, r in enumerate(sorted(chosen, key=lambda r: (r[3], r[0])), 1)}
    positions = {}
    for owner in {r[1] for r in chosen}:
        group = [r for r in chosen if r[1] == owner]
        if owner is None:
            positions.update({r[0]: base + slots[r[0]] for r in group})
            continue
        by_sequence = sorted(group, key=lambda r: r[2] or 0)
        for r, slot in zip(by_sequence, sorted(slots[r[0]] for r in group), strict=True):
            positions[r[0]] = base + slot
    return positions


customer_events = st.tuples(
    st.integers(0, 6),  # events
    st.integers(0, 6),  # of which stamped already (a prefix)
    st.integers(0, 7),  # a sequence deleted (a gap), when in range
)


async def test_passes_stamp_what_the_model_stamps(database_url: str) -> None:
    """Random customers (some events stamped already, gaps in their sequences), events without a
    customer, times out of sequence order and tied, and passes of random sizes: each pass stamps
    exactly the rows and positions of the model, until every event is stamped."""
    conn = await asyncpg.connect(database_url)
    loop = asyncio.get_running_loop()

    def run(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

    async def check(
        customers: list[tuple[int, int, int]], loose: int, times: list[int], sizes: list[int]
    ) -> None:
        tick = itertools.cycle(times)
        rows: list[Row] = []
        stamped: dict[uuid.UUID, int] = {}
        for count, done, gap in customers:
            customer = uuid.uuid4()
            for sequence in range(1, count + 1):
                if sequence != gap:
                    rows.append((uuid.uuid4(), customer, sequence, next(tick)))
                    if sequence <= done:
                        stamped[rows[-1][0]] = len(stamped) + 1
        rows += [(uuid.uuid4(), None, None, next(tick)) for _ in range(loose)]
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("UPDATE event_feed_state SET last_position = $1", len(stamped))
            await conn.executemany(
                "INSERT INTO events (id, type, customer_id, sequence, occurred_at, data, position)"
                " VALUES ($1, 'test.model', $2, $3,"
                " '2026-01-01'::timestamptz + make_interval(secs => $4), '{}', $5)",
                [(*r[:3], float(r[3]), stamped.get(r[0])) for r in rows],
            )
            for size in sizes * 10:
                if len(stamped) == len(rows):
                    break
                expected = _model_pass(rows, stamped, size)
                await stamp_pass(conn, size)
                stored = {
                    r["id"]: r["position"]
                    for r in await conn.fetch("SELECT id, position FROM events")
                    if r["position"] is not None
                }
                assert stored == {**stamped, **expected}, (customers, loose, times, size)
                stamped = stored
            await catch_up(conn, min(sizes))
            positions = await conn.fetch("SELECT position FROM events ORDER BY position")
            assert [r["position"] for r in positions] == list(range(1, len(rows) + 1))
        finally:
            await transaction.rollback()

    @given(
        customers=st.lists(customer_events, max_size=4),
        loose=st.integers(0, 3),
        times=st.lists(st.integers(0, 12), min_size=1, max_size=8),
        sizes=st.lists(st.integers(1, 8), min_size=1, max_size=4),
    )
    @settings(
        max_examples=150,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def property_(
        customers: list[tuple[int, int, int]], loose: int, times: list[int], sizes: list[int]
    ) -> None:
        run(check(customers, loose, times, sizes))

    try:
        await asyncio.to_thread(property_)
    finally:
        await conn.close()
