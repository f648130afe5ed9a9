"""Recording orders through REST against the raw app's single-row insert, and the batch, on this
machine.

    uv run python bench/orders.py [--seconds 10] [--warmup 3] [--concurrency 32] [--rounds 1]
                                  [--batches 10] [--batch-size 1000] [--batch-clients 1]
                                  [--history 5]

1-2. `bench/side_by_side.py`: two fresh databases (kehu_bench_orders and _raw), Kehu's migrated
   with an admin key and `--customers` demo customers; `kehu serve` and `uvicorn
   bench.raw_app:app` side by side (1 worker each, the same DB pool size, the job worker off),
   each in its own session; gives Kehu `--history` batches of
   1,000 orders and runs ANALYZE, as a live database has orders and statistics about them.
3. Loads, with wrk, the raw app's `POST /customers` (one INSERT) and Kehu's `POST /v1/orders` (a
   paid order of a random seeded customer with 2 lines and a unique source/external_id, as a shop
   sends them: the live-customer check, the order, its lines, the customer's metrics and its
   `order.created` event, in one statement). Per scenario: req/s, p50, p99, server CPU per
   request; with --rounds N each figure is its median round.
4. The batch: `--batches` requests of `POST /v1/orders/batch`, each `--batch-size` orders × 2
   lines over random seeded customers, sent over httpx by `--batch-clients` concurrent clients
   after one warm-up batch; orders/s over the whole run (every order must come back `created`),
   and the batch latency p50 / max.
5. Prints the tables with Kehu against raw (acceptance: ≥ 0.4 × raw; batch ≥ 10,000 orders/s),
   stops the servers and drops the databases (also on Ctrl-C or an error). Everything is bounded
   by timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402
import httpx2 as httpx  # noqa: E402

from bench import side_by_side  # noqa: E402
from bench.run import (  # noqa: E402
    DB_TIMEOUT,
    LUA_COMMON,
    PLAN,
    Scenario,
    _lua_headers,
    http,
    lua_post,
)

TARGET = 0.4
BATCH_TARGET = 10_000  # orders/s
ORDER_PLAN = [
    next(s for s in PLAN if s.key == "raw_post"),
    Scenario("kehu_order", "Kehu POST /v1/orders (2 lines)", "kehu", raw="raw_post", target=TARGET),
]


def order_body(customer_id: str, external_id: str) -> dict[str, object]:
    """A paid web order with two lines (2 × 49.50 + 1 × 20.00)."""
    return {
        "customer_id": customer_id,
        "source": "bench",
        "external_id": external_id,
        "channel": "web",
        "items": [
            {
                "sku": "TEA-01",
                "name": "Oolong",
                "category": "tea",
                "quantity": 2,
                "unit_price": {"amount": "49.50", "currency": "CNY"},
            },
            {
                "sku": "CUP-02",
                "name": "Cup",
                "category": "teaware",
                "quantity": 1,
                "unit_price": {"amount": "20.00", "currency": "CNY"},
            },
        ],
        "total": {"amount": "119.00", "currency": "CNY"},
    }


def lua_order(customer_ids: list[str], headers: dict[str, str]) -> str:
    """order_body() of a random customer, with a unique (source, external_id)."""
    id_list = ",".join(f'"{i}"' for i in customer_ids)
    template = (
        json.dumps(order_body("CUSTOMER", "EXTERNAL"))
        .replace('"CUSTOMER"', '"%s"')
        .replace('"EXTERNAL"', '"%s-%d-%d"')
    )
    return (
        LUA_COMMON
        + f'wrk.headers["Content-Type"] = "application/json"\n{_lua_headers(headers)}'
        + f"local ids = {{{id_list}}}\n"
        + "function request()\n"
        + "  counter = counter + 1\n"
        + f"  local body = string.format([[{template}]], "
        + "ids[math.random(#ids)], prefix, tid, counter)\n"
        + '  return wrk.format("POST", "/v1/orders", nil, body)\n'
        + "end\n"
    )


async def run_batches(
    base: str,
    headers: dict[str, str],
    customer_ids: list[str],
    *,
    batches: int,
    size: int,
    clients: int,
    run_id: str,
) -> dict[str, float]:
    """Warm up with one batch, then send ``batches`` batches from ``clients`` concurrent clients;
    orders/s over the run and the batch latencies. Fails unless every order is created."""
    rng = random.Random(7)

    def body(n: int) -> bytes:
        items = [
            order_body(rng.choice(customer_ids), f"batch-{run_id}-{n}-{i}") for i in range(size)
        ]
        return json.dumps({"items": items}).encode()

    bodies = [body(n) for n in range(batches + 1)]
    latencies: list[float] = []
    send_headers = {**headers, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def send(content: bytes) -> None:
            started = time.perf_counter()
            response = await client.post("/v1/orders/batch", content=content, headers=send_headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200 or response.json()["created"] != size:
                raise RuntimeError(f"batch answered {response.status_code}: {response.text[:300]}")

        await send(bodies[0])
        latencies.clear()
        queue = list(bodies[1:])

        async def worker() -> None:
            while queue:
                await send(queue.pop())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "orders_per_s": batches * size / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "max_ms": max(latencies) * 1000,
        "seconds": elapsed,
    }


async def analyze(url: str) -> None:
    """ANALYZE, as autovacuum would: every connection's cached plans over the tables are redone."""
    conn = await asyncpg.connect(url, timeout=DB_TIMEOUT, command_timeout=DB_TIMEOUT * 4)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    side_by_side.add_arguments(parser)
    parser.add_argument("--batches", type=int, default=10, help="batches measured (0: none)")
    parser.add_argument("--batch-size", type=int, default=1000, help="orders per batch")
    parser.add_argument("--batch-clients", type=int, default=1, help="concurrent batch senders")
    parser.add_argument(
        "--history", type=int, default=5, help="batches of 1,000 orders stored before measuring"
    )
    args = parser.parse_args()
    side_by_side.check_arguments(parser, args)
    if not 0 <= args.batches <= 1000 or not 1 <= args.batch_size <= 1000:
        parser.error("--batches must be 0..1000 and --batch-size 1..1000")
    if not 1 <= args.batch_clients <= 16:
        parser.error("--batch-clients must be 1..16")
    if not 0 <= args.history <= 100:
        parser.error("--history must be 0..100")
    try:
        with side_by_side.side_by_side(args, "orders") as run:
            kehu, ids, auth = run.kehu, run.ids, run.auth
            sample = order_body(ids[0], f"sanity-{run.run_id}")
            status, body = http("POST", f"{kehu.base}/v1/orders", sample, auth)
            if status != 201:
                raise RuntimeError(f"POST /v1/orders answered {status}: {str(body)[:300]}")
            if args.history:
                # A live database has orders and statistics about them. On a new one, the foreign-key
                # checks of the first orders are planned for a near-empty `orders` table (a
                # sequential scan) and each connection keeps that plan while the table grows, until
                # the first ANALYZE (autovacuum's, within a minute or so on a live database): the
                # first runs of this bench read 66 million rows that way and measured that instead.
                print(f"· history: {args.history} × 1,000 orders, then ANALYZE", flush=True)
                asyncio.run(
                    run_batches(
                        kehu.base,
                        auth,
                        ids,
                        batches=args.history,
                        size=1000,
                        clients=1,
                        run_id=f"{run.run_id}h",
                    )
                )
                asyncio.run(analyze(run.url["kehu"]))

            scripts = {
                "raw_post": lua_post("/customers", {}),
                "kehu_order": lua_order(ids, auth),
            }
            side_by_side.measure(run, args, ORDER_PLAN, scripts)
            if args.batches:
                print(
                    f"\n· {args.batches} batches of {args.batch_size} orders × 2 lines", flush=True
                )
                figures = asyncio.run(
                    run_batches(
                        kehu.base,
                        auth,
                        ids,
                        batches=args.batches,
                        size=args.batch_size,
                        clients=args.batch_clients,
                        run_id=run.run_id,
                    )
                )
                verdict = "ok" if figures["orders_per_s"] >= BATCH_TARGET else "MISSED"
                print(
                    f"\n{args.batches} × POST /v1/orders/batch ({args.batch_size} orders × 2 lines, "
                    f"{args.batch_clients} client(s)): {figures['orders_per_s']:,.0f} orders/s "
                    f"({figures['seconds']:.2f} s), batch p50 {figures['p50_ms']:.0f} ms, max "
                    f"{figures['max_ms']:.0f} ms; target ≥ {BATCH_TARGET:,} orders/s: {verdict}"
                )
        return 0
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\n· interrupted ({type(exc).__name__}); stopping the servers", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
