"""Segment previews and refreshes over a generated history: 1,000,000 customers, 5,000,000 orders.

    uv run python bench/segments.py [--customers 1000000] [--orders 5000000] [--rounds 5] [--pg URL]

1. Creates its own database (on --pg, default KEHU_TEST_DATABASE_URL's server, else
   postgresql://postgres@127.0.0.1:5432) and migrates it in this process (no server). Generates
   the history as `bench/analytics_refresh.py` does (its GENERATE statements, each step's seconds
   printed), then, set-based: every customer in country CN, in one of 8 provinces and with a
   subset of the tags outdoor / tea / coffee / family (both by a hash of the id: one UPDATE), and
   a customer_metrics row (order figures only) per customer with orders not cancelled (one INSERT
   ... SELECT); VACUUM ANALYZE.
2. Through the app's engine and repository (app.segments.repository), with `time.perf_counter`:
   - the preview count (`count_matching`, on a read connection) of a 4-condition rule (country,
     region in 3 provinces, tag outdoor, metrics.order_count >= 2), --rounds times, and of the same
     rule plus a behavioural condition (an order in the last 365 days); each round, the median and
     the count; then the EXPLAIN (ANALYZE, BUFFERS) plan of each count query (the statement and
     values the app sends), its first lines;
   - a dynamic segment of the 4-condition rule, refreshed as `POST /v1/segments/{id}/refresh`
     does (lock the segment, `refresh`, `mark_refreshed`, read it back; one transaction): the
     first refresh (every match enters, an event each); no ANALYZE of segment_memberships after
     it (--analyze adds one), as right after a segment is made: the refresh's plan must not need
     statistics on the stays (it diffs them with a full join, which PostgreSQL runs by hash or
     merge only); --rounds refreshes with nothing changed (none may enter or exit); one after 1 % of the customers lost the outdoor tag (the
     members among them exit). Each prints the statement's and the transaction's seconds,
     entered, exited and the members after; the members are checked against the preview count.
3. Drops the database (also on an error). Statements are bounded by --limit seconds each.

This script, PostgreSQL and whatever else runs share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information (as in app/)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from app.core.auth import Caller  # noqa: E402
from app.core.ids import new_id  # noqa: E402
from app.db import engine as db  # noqa: E402
from app.db.migrations import upgrade  # noqa: E402
from app.rules import repository as rules_repository  # noqa: E402
from app.rules.schemas import Rule  # noqa: E402
from app.segments import repository, service  # noqa: E402
from app.segments.schemas import ExportFormat  # noqa: E402
from bench.analytics_refresh import generate  # noqa: E402
from bench.event_latency import create_database, drop_database, with_database  # noqa: E402

PROVINCES = [
    "Guangdong",
    "Zhejiang",
    "Jiangsu",
    "Sichuan",
    "Shandong",
    "Hubei",
    "Fujian",
    "Heilongjiang",
]
TAGS = ["outdoor", "tea", "coffee", "family"]

# Region by bits 8-10 of the id's hash, each tag by one of bits 0-3 (so half the customers have
# outdoor, and the tags are independent of the region).
MIX = f"""
UPDATE customers
SET country = 'CN',
    region = (ARRAY[{", ".join(f"'{p}'" for p in PROVINCES)}])[1 + ((hashtext(id::text) >> 8) & 7)],
    tags = ARRAY(SELECT t FROM unnest(ARRAY[{", ".join(f"'{t}'" for t in TAGS)}]::varchar(64)[])
                     WITH ORDINALITY AS u(t, i)
                 WHERE (hashtext(id::text) >> (i::int - 1)) & 1 = 1)
"""

# The order figures the incremental updates keep (app/analytics/incremental.py): orders not
# cancelled. The refresh-only figures (RFM, tiers, predictions) stay NULL: no rule here reads them.
METRICS = """
INSERT INTO customer_metrics (customer_id, order_count, gross_revenue, refunded_amount, net_revenue,
                              refund_count, first_order_at, last_order_at)
SELECT customer_id, count(*), sum(total), sum(refunded_amount), sum(total) - sum(refunded_amount),
       count(*) FILTER (WHERE refunded_amount > 0), min(occurred_at), max(occurred_at)
FROM orders
WHERE status <> 'cancelled'
GROUP BY customer_id
"""

# The customers tagged outdoor among 1 % of all (by another hash of the id) lose the tag.
FLIP = """
UPDATE customers SET tags = array_remove(tags, 'outdoor'), updated_at = :now
WHERE hashtext(id::text || 'flip')::bigint % 100 = 0 AND 'outdoor' = ANY (tags)
"""

FOUR_CONDITIONS: dict[str, Any] = {
    "all": [
        {"field": "country", "op": "eq", "value": "CN"},
        {"field": "region", "op": "in", "value": PROVINCES[:3]},
        {"field": "tags", "op": "contains", "value": "outdoor"},
        {"field": "metrics.order_count", "op": "gte", "value": 2},
    ]
}
WITH_ORDER: dict[str, Any] = {
    "all": [
        *FOUR_CONDITIONS["all"],
        {"event": "order", "within_days": 365, "count": {"op": "gte", "value": 1}},
    ]
}
PLAN_LINES = 25


async def prepare(url: str) -> dict[str, int]:
    """The profile mix and the metrics rows, then VACUUM ANALYZE; the counts."""
    conn = await asyncpg.connect(url, timeout=30, command_timeout=3600)
    try:
        await conn.execute("SET work_mem = '512MB'")
        for label, statement in (
            ("customers: country, region, tags", MIX),
            ("customer_metrics", METRICS),
            ("VACUUM ANALYZE customers, customer_metrics", None),
        ):
            started = time.perf_counter()
            status = await conn.execute(statement or label)
            print(f"  {time.perf_counter() - started:7.1f} s  {label}  ({status})", flush=True)
        return {
            "customers in CN": int(
                await conn.fetchval("SELECT count(*) FROM customers WHERE country = 'CN'")
            ),
            "customers tagged outdoor": int(
                await conn.fetchval("SELECT count(*) FROM customers WHERE tags @> '{outdoor}'")
            ),
            "customer_metrics rows": int(
                await conn.fetchval("SELECT count(*) FROM customer_metrics")
            ),
        }
    finally:
        await conn.close()


async def bound(server: str, name: str, limit: float) -> None:
    """Every later connection to the database gets a statement timeout of ``limit`` seconds."""
    conn = await asyncpg.connect(with_database(server, name), timeout=30, command_timeout=60)
    try:
        await conn.execute(f"ALTER DATABASE \"{name}\" SET statement_timeout = '{int(limit)}s'")
    finally:
        await conn.close()


async def preview(label: str, rule: Rule, now: datetime, rounds: int) -> None:
    seconds: list[float] = []
    count = 0
    print(f"\npreview count, {label}:")
    for round_number in range(1, rounds + 1):
        started = time.perf_counter()
        async with db.read_connection() as conn:
            count = await repository.count_matching(conn, rule, now)
        seconds.append(time.perf_counter() - started)
        print(f"  round {round_number}: {seconds[-1] * 1000:9.1f} ms  ({count:,} customers)")
    print(f"  median {statistics.median(seconds) * 1000:9.1f} ms; matched {count:,}", flush=True)


async def explain(label: str, rule: Rule, now: datetime) -> None:
    """The count query's plan, run once (EXPLAIN ANALYZE executes it), with the statement and bound
    values the app sends (rendering the values as literals loses their casts: varchar[] @> text[]
    has no operator)."""
    query = select(func.count()).select_from(rules_repository.matching_ids(rule, now).subquery())
    async with db.read_connection() as conn:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        values = tuple(params[name] for name in compiled.positiontup or ())
        result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + str(compiled), values)
        lines = [str(row[0]) for row in result]
    print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the count, {label} (first {PLAN_LINES} lines):")
    for line in lines[:PLAN_LINES]:
        print(f"  {line}")
    if len(lines) > PLAN_LINES:
        print(f"  ... ({len(lines) - PLAN_LINES} more lines)")
        for line in lines[-2:]:
            print(f"  {line}")


async def refresh(segment_id: uuid.UUID, now: datetime) -> tuple[float, float, int, int, int]:
    """One refresh as the service's refresh_segment runs it: (statement seconds, transaction
    seconds including the commit, entered, exited, members after)."""
    started = time.perf_counter()
    async with db.unit_of_work() as conn:
        segment = await repository.get(conn, segment_id, lock=True)
        assert segment is not None
        assert segment.rule is not None
        statement_started = time.perf_counter()
        entered, exited = await repository.refresh(conn, segment, segment.rule, now)
        statement = time.perf_counter() - statement_started
        await repository.mark_refreshed(conn, segment_id, now)
        refreshed = await repository.get(conn, segment_id)
        assert refreshed is not None
    return statement, time.perf_counter() - started, entered, exited, refreshed.member_count


def show(label: str, figures: tuple[float, float, int, int, int]) -> None:
    statement, transaction, entered, exited, members = figures
    print(
        f"  {label}: {statement:7.2f} s statement, {transaction:7.2f} s transaction; "
        f"entered {entered:,}, exited {exited:,}, members {members:,}",
        flush=True,
    )


async def measure(url: str, args: argparse.Namespace) -> None:
    as_of = date.fromisoformat(args.as_of)
    # The end of --as-of: the history's last orders are that day.
    now = datetime.combine(as_of, day_time(23, 59, 59), UTC)
    four, with_order = Rule.parse(FOUR_CONDITIONS), Rule.parse(WITH_ORDER)
    db.configure(db.create_engine(url, pool_size=2))
    try:
        await preview("4 conditions", four, now, args.rounds)
        await preview("4 conditions + an order within 365 days", with_order, now, args.rounds)
        await explain("4 conditions", four, now)
        await explain("4 conditions + an order within 365 days", with_order, now)

        segment_id = new_id()
        async with db.unit_of_work() as conn:
            created = await repository.insert_segment(
                conn,
                {
                    "id": segment_id,
                    "name": "bench: outdoor repeat buyers",
                    "description": "bench/segments.py",
                    "kind": "dynamic",
                    "rule": four.source,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if not created:
                raise RuntimeError("the segment's name is taken")
        async with db.read_connection() as conn:
            expected = await repository.count_matching(conn, four, now)
            events_before = await _count(conn, "SELECT count(*) FROM events")

        # Each refresh a second later than the one before: stays end after they begin.
        step = iter(range(1, 1_000_000))

        def later() -> datetime:
            return now + timedelta(seconds=next(step))

        print("\nfull refresh of a dynamic segment (4 conditions):")
        first = await refresh(segment_id, later())
        show("first (every match enters)", first)
        async with db.read_connection() as conn:
            events = await _count(conn, "SELECT count(*) FROM events") - events_before
        print(f"  events written: {events:,}; preview count {expected:,}")
        if not (first[2] == expected == first[4] == events):
            raise RuntimeError(f"first refresh: {first}, expected {expected} members and events")

        if args.analyze:
            # What autovacuum does soon after the first refresh (for comparison: the refresh must
            # not need it).
            started = time.perf_counter()
            async with db.unit_of_work() as conn:
                await conn.execute(text("ANALYZE segment_memberships"))
            print(f"  ANALYZE segment_memberships: {time.perf_counter() - started:.2f} s")
        else:
            print("  segment_memberships not analyzed (as right after the first refresh)")

        steady: list[float] = []
        for round_number in range(1, args.rounds + 1):
            figures = await refresh(segment_id, later())
            show(f"nothing changed, round {round_number}", figures)
            steady.append(figures[1])
            if figures[2] != 0 or figures[3] != 0:
                raise RuntimeError(f"nothing changed, yet {figures[2:4]} entered / exited")
        print(f"  nothing changed: median {statistics.median(steady):.2f} s (transaction)")

        started = time.perf_counter()
        async with db.unit_of_work() as conn:
            flipped = (await conn.execute(text(FLIP), {"now": later()})).rowcount
        print(
            f"\n  {flipped:,} customers (the ones tagged outdoor among 1 % of all) lost the tag "
            f"in {time.perf_counter() - started:.2f} s"
        )
        async with db.read_connection() as conn:
            expected = await repository.count_matching(conn, four, now)
        changed = await refresh(segment_id, later())
        show("after the change", changed)
        if changed[2] != 0 or changed[4] != expected:
            raise RuntimeError(f"after the change: {changed}, expected {expected} members")

        await incremental(segment_id, later(), args.single)
        await export(segment_id, changed[4])
    finally:
        await db.dispose()


async def incremental(segment_id: uuid.UUID, now: datetime, count: int) -> None:
    """Re-evaluation of one customer as the follower runs it (its segments share-locked, not
    counted), for a batch of one: ``count`` random customers, each in its own transaction."""
    async with db.read_connection() as conn:
        picked = list(
            (
                await conn.execute(
                    text("SELECT id FROM customers TABLESAMPLE SYSTEM (1) LIMIT :n"), {"n": count}
                )
            ).scalars()
        )
    seconds = []
    for customer_id in picked:
        started = time.perf_counter()
        async with db.unit_of_work() as conn:
            for segment in await repository.lock_dynamic_segments(conn):
                await repository.refresh(
                    conn, segment, segment.rule, now, customer_ids=[customer_id]
                )
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    p99 = seconds[max(0, round(len(seconds) * 0.99) - 1)]
    print(
        f"\nincremental re-evaluation of one customer ({len(seconds)} customers, one "
        f"transaction each): p50 {statistics.median(seconds) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {seconds[-1] * 1000:.1f} ms"
    )


async def export(segment_id: uuid.UUID, members: int) -> None:
    """The member export (as ``GET .../members/export`` streams it, without HTTP), in both
    formats: rows per second, and how much this process's peak resident memory grew."""
    caller = Caller(key_id=new_id(), name="bench", scopes=frozenset({"admin"}))
    for export_format in (ExportFormat.ndjson, ExportFormat.csv):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        size = rows = 0
        async with db.unit_of_work() as conn:
            async for chunk in service.export_members(
                conn, caller, segment_id, export_format=export_format
            ):
                size += len(chunk)
                rows += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(
            f"export {export_format.value}: {rows:,} lines ({members:,} members), "
            f"{size / 2**20:.1f} MiB in {seconds:.2f} s = {rows / seconds:,.0f} rows/s; "
            f"peak resident memory grew {grown / 1024:.1f} MiB"
        )


async def _count(conn: db.Connection, sql: str) -> int:
    return int((await conn.execute(text(sql))).scalar_one())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--skus", type=int, default=2_000)
    parser.add_argument("--as-of", default=date.today().isoformat())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--single", type=int, default=300, help="customers re-evaluated one at a time"
    )
    parser.add_argument("--limit", type=float, default=1800, help="seconds per statement at most")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE segment_memberships after the first refresh, as autovacuum would later",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database at the end (to look at plans)"
    )
    default_pg = os.environ.get("KEHU_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg", default=default_pg)
    args = parser.parse_args()

    name, url = asyncio.run(create_database(args.pg, "kehu_bench_segments"))
    try:
        started = time.perf_counter()
        upgrade(url)
        print(f"migrated in {time.perf_counter() - started:.1f} s")
        print(f"generating {args.customers:,} customers / {args.orders:,} orders ...")
        started = time.perf_counter()
        counts = asyncio.run(generate(url, args))
        print(f"generated in {time.perf_counter() - started:.0f} s: {counts}", flush=True)
        print("profiles and metrics ...")
        print(f"  {asyncio.run(prepare(url))}", flush=True)
        asyncio.run(bound(args.pg, name, args.limit))
        asyncio.run(measure(url, args))
        return 0
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            asyncio.run(drop_database(args.pg, name))


if __name__ == "__main__":
    sys.exit(main())
