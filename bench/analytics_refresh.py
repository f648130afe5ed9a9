"""The full analytics refresh over a generated history: 1,000,000 customers and 5,000,000 orders.

    uv run python bench/analytics_refresh.py [--customers 1000000] [--orders 5000000] [--pg URL]

1. Creates its own database (on --pg, default KEHU_TEST_DATABASE_URL's server, else
   postgresql://postgres@127.0.0.1:5432), migrates it and mints an admin key.
2. Generates the history in PostgreSQL itself (not through the API; `bench/orders.py` measures
   that): --customers customers, 80 % of them with orders (1 + an exponential number each, so
   --orders in all, spread over the three years before --as-of), 1–3 lines per order over --skus
   skus (popular skus more often; the lines of one order are related skus, so pairs repeat), 3 %
   cancelled orders, 2 % of the rest half refunded. No customer_metrics rows: the first refresh
   builds them all (the heaviest run); ANALYZE.
3. Starts `kehu serve` with its job worker on a free port of 127.0.0.1, asks for a refresh as of
   --as-of (`POST /v1/analytics/refresh`) and polls it until it ends, sampling the server's
   resident memory every 0.2 s; then runs a second refresh (nothing changed: the steady state).
   Prints each step's seconds (the refresh's own figures), the total, the events written and the
   server's memory before and at its peak.
4. Stops the server and drops the database (also on an error). Bounded by timeouts.

The server, its worker and PostgreSQL share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information (as in app/)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.event_latency import create_database, drop_database  # noqa: E402
from bench.run import free_port, migrate_and_mint_key, stop, wait_ready  # noqa: E402

GENERATE = [
    # Room to sort and aggregate in memory: the history is generated once, as fast as it goes.
    "SET work_mem = '512MB'",
    "SET maintenance_work_mem = '1GB'",
    # Customers 1..N; the first 80 % buy.
    """CREATE TABLE bench_customers AS
       SELECT n, gen_random_uuid() AS id FROM generate_series(1, $customers) AS n""",
    """INSERT INTO customers (id, first_name, city, created_at, updated_at)
       SELECT id, 'Customer ' || n, (ARRAY['Guangzhou', 'Beijing', 'Shanghai', 'Harbin'])[1 + n % 4],
              $as_of::date - 1200, $as_of::date - 1200
       FROM bench_customers""",
    # 1 + an exponential number of orders per buying customer, whose mean makes --orders in all.
    """CREATE TABLE bench_orders AS
       SELECT c.id AS customer_id, gen_random_uuid() AS id,
              ($as_of::date + 1)::timestamptz - random() * interval '1095 days' AS occurred_at,
              1 + floor(random() * 3)::int AS lines,
              1 + floor(power(random(), 2) * $skus)::int AS base_sku
       FROM bench_customers AS c,
            LATERAL generate_series(
                1, 1 + floor(-ln(1 - random()) * $orders_mean + 0 * c.n)::int) AS g
       WHERE c.n <= $customers * 0.8""",
    # Lines: related skus (base, base + a small step, ...), so pairs repeat across orders.
    """CREATE TABLE bench_items AS
       SELECT o.customer_id, o.id AS order_id, l AS line, s.sku,
              1 + (random() < 0.2)::int AS quantity, (5 + s.sku * 37 % 500)::numeric(14, 2) AS price
       FROM bench_orders AS o, generate_series(1, o.lines) AS l,
            LATERAL (SELECT ((o.base_sku + (l - 1) * (1 + floor(random() * 5)::int) - 1)
                             % $skus) + 1 AS sku) AS s""",
    """INSERT INTO orders (customer_id, id, status, channel, currency, subtotal, total, occurred_at,
                          created_at, updated_at)
       SELECT o.customer_id, o.id, CASE WHEN random() < 0.03 THEN 'cancelled' ELSE 'paid' END,
              (ARRAY['web', 'app', 'store'])[1 + floor(random() * 3)::int], 'CNY', t.total, t.total,
              o.occurred_at, o.occurred_at, o.occurred_at
       FROM bench_orders AS o
       JOIN (SELECT order_id, sum(quantity * price) AS total FROM bench_items GROUP BY order_id) AS t
         ON t.order_id = o.id
       ORDER BY o.customer_id, o.id""",
    """INSERT INTO order_items (customer_id, order_id, line, sku, name, category, quantity, unit_price)
       SELECT customer_id, order_id, line, 'SKU-' || sku, 'Item ' || sku, 'category-' || (sku % 40),
              quantity, price
       FROM bench_items ORDER BY customer_id, order_id, line""",
    """CREATE TABLE bench_refunds AS
       SELECT customer_id, id AS order_id, round(total / 2, 2) AS amount, occurred_at
       FROM orders WHERE status <> 'cancelled' AND total > 0.02 AND random() < 0.02""",
    """INSERT INTO order_refunds (customer_id, id, order_id, amount, reason, occurred_at)
       SELECT customer_id, gen_random_uuid(), order_id, amount, 'bench', occurred_at + interval '1 day'
       FROM bench_refunds""",
    """UPDATE orders AS o SET refunded_amount = r.amount
       FROM bench_refunds AS r WHERE o.customer_id = r.customer_id AND o.id = r.order_id""",
    "DROP TABLE bench_customers, bench_orders, bench_items, bench_refunds",
    "VACUUM ANALYZE",
]


def _sql(statement: str, args: argparse.Namespace, orders_mean: float) -> str:
    return (
        statement.replace("$customers", str(args.customers))
        .replace("$orders_mean", repr(orders_mean))
        .replace("$skus", str(args.skus))
        .replace("$as_of", f"'{args.as_of}'")
    )


async def generate(url: str, args: argparse.Namespace) -> dict[str, int]:
    conn = await asyncpg.connect(url, timeout=30, command_timeout=3600)
    try:
        # E[1 + floor(Exp(mean))] is about mean + 0.5.
        orders_mean = max(args.orders / (args.customers * 0.8) - 0.5, 0.0)
        for statement in GENERATE:
            started = time.perf_counter()
            await conn.execute(_sql(statement, args, orders_mean))
            first_line = " ".join(statement.split())[:70]
            print(f"  {time.perf_counter() - started:7.1f} s  {first_line}", flush=True)
        counts = {
            table: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
            for table in ("customers", "orders", "order_items", "order_refunds")
        }
        return counts
    finally:
        await conn.close()


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the worker runs inside `kehu serve`)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def request(
    port: int, key: str, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def run_refresh(port: int, key: str, pid: int, as_of: str, limit: float) -> dict[str, Any]:
    """One refresh through the API, polled to its end; its final state plus time and memory."""
    before = rss_kib(pid)
    started = time.perf_counter()
    status, refresh = request(port, key, "POST", "/v1/analytics/refresh", {"as_of": as_of})
    if status != 202:
        raise RuntimeError(f"POST /v1/analytics/refresh: {status} {refresh}")
    peak = before
    last_poll = 0.0
    while True:
        peak = max(peak, rss_kib(pid))
        if time.perf_counter() - last_poll >= 1.0:
            last_poll = time.perf_counter()
            status, refresh = request(port, key, "GET", f"/v1/analytics/refreshes/{refresh['id']}")
            if status != 200:
                raise RuntimeError(f"GET refresh: {status} {refresh}")
            if refresh["status"] in ("succeeded", "failed"):
                break
        if time.perf_counter() - started > limit:
            raise RuntimeError(f"the refresh did not end within {limit:.0f} s: {refresh}")
        time.sleep(0.2)
    refresh["wall_seconds"] = time.perf_counter() - started
    refresh["rss_before_mib"] = before / 1024
    refresh["rss_peak_mib"] = peak / 1024
    ended: dict[str, Any] = refresh
    return ended


def report(label: str, refresh: dict[str, Any], events: int) -> None:
    print(f"\n{label}: {refresh['status']} in {refresh['wall_seconds']:.1f} s (wall, via the API)")
    if refresh.get("error"):
        print(f"  error: {refresh['error']}")
    for step, figures in (refresh.get("figures") or {}).items():
        seconds = figures.get("seconds") if isinstance(figures, dict) else None
        rest = {k: v for k, v in figures.items() if k != "seconds"} if seconds is not None else {}
        shown = f"{seconds:8.1f} s" if isinstance(seconds, int | float) else " " * 10
        print(f"  {shown}  {step}  {json.dumps(rest)[:160]}")
    print(
        f"  server memory: {refresh['rss_before_mib']:.0f} MiB before, "
        f"{refresh['rss_peak_mib']:.0f} MiB at the peak; events written: {events:,}"
    )


async def empty_analytics(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=30, command_timeout=600)
    try:
        await conn.execute(
            "TRUNCATE customer_metrics, analytics_refreshes, analytics_model_fits, item_stats,"
            " item_pairs, events, customer_event_sequences, api_keys, pgqueuer"
        )
    finally:
        await conn.close()


async def count_events(url: str) -> int:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--skus", type=int, default=2_000)
    parser.add_argument("--as-of", default="2026-06-30")
    parser.add_argument("--limit", type=float, default=1800, help="seconds per refresh at most")
    default_pg = os.environ.get("KEHU_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg", default=default_pg)
    parser.add_argument(
        "--reuse",
        metavar="URL",
        help="a database this script generated before (kept, not dropped): its analytics, events "
        "and keys are emptied and the refreshes run on its history, without generating again",
    )
    args = parser.parse_args()

    kehu_bin = shutil.which("kehu") or str(Path(sys.executable).parent / "kehu")
    if args.reuse:
        name, url = None, args.reuse
    else:
        name, url = asyncio.run(create_database(args.pg, "kehu_bench_analytics"))
    port = free_port()
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": url,
        "KEHU_LOG_LEVEL": "warning",
        "KEHU_RATE_LIMIT": "10000000/minute",
        "KEHU_RUN_WORKER": "true",
        "KEHU_PORT": str(port),
    }
    server = None
    try:
        if args.reuse:
            asyncio.run(empty_analytics(url))
        key = migrate_and_mint_key(kehu_bin, env)
        if not args.reuse:
            print(f"generating {args.customers:,} customers / {args.orders:,} orders ...")
            started = time.perf_counter()
            counts = asyncio.run(generate(url, args))
            print(f"generated in {time.perf_counter() - started:.0f} s: {counts}", flush=True)
        server = subprocess.Popen([kehu_bin, "serve"], env=env, start_new_session=True)
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        first = run_refresh(port, key, server.pid, args.as_of, args.limit)
        report("first refresh (no metrics yet)", first, asyncio.run(count_events(url)))
        events_before = asyncio.run(count_events(url))
        second = run_refresh(port, key, server.pid, args.as_of, args.limit)
        report(
            "second refresh (nothing changed)",
            second,
            asyncio.run(count_events(url)) - events_before,
        )
        return 0 if first["status"] == second["status"] == "succeeded" else 1
    finally:
        stop(server)
        if name is not None:
            asyncio.run(drop_database(args.pg, name))


if __name__ == "__main__":
    sys.exit(main())
