"""Recording orders through REST against the raw app's single-row insert, and the batch, on this
machine.

    uv run python bench/orders.py [--seconds 10] [--warmup 3] [--concurrency 32] [--rounds 1]
                                  [--batches 10] [--batch-size 1000] [--batch-clients 1]
                                  [--history 5]

1. Creates two fresh databases (kehu_bench_orders, kehu_bench_orders_raw) the way bench/run.py
   does: Kehu's migrated, with an admin key and `--customers` demo customers; the raw app's table
   (bench/raw_app.py SCHEMA).
2. Starts `kehu serve` and `uvicorn bench.raw_app:app` side by side (1 worker each, the same DB
   pool size, the job worker off), each in its own session; gives Kehu `--history` batches of
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
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402
import httpx2 as httpx  # noqa: E402

from bench.run import (  # noqa: E402
    DB_TIMEOUT,
    LUA_COMMON,
    PLAN,
    Result,
    Scenario,
    Server,
    _cleanup,
    _lua_headers,
    _terminate,
    http,
    kehu_ids,
    lua_post,
    migrate_and_mint_key,
    recreate_db,
    rows,
    run_wrk,
    seed_kehu_rest,
    seed_raw,
    table,
    uvicorn_command,
    wait_ready,
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
    parser.add_argument("--seconds", type=int, default=10, help="measurement per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections")
    parser.add_argument("--customers", type=int, default=1000, help="customers seeded in Kehu")
    parser.add_argument("--pool-size", type=int, default=10, help="DB pool of each server")
    parser.add_argument("--rounds", type=int, default=1, help="each figure is the median round")
    parser.add_argument("--batches", type=int, default=10, help="batches measured (0: none)")
    parser.add_argument("--batch-size", type=int, default=1000, help="orders per batch")
    parser.add_argument("--batch-clients", type=int, default=1, help="concurrent batch senders")
    parser.add_argument(
        "--history", type=int, default=5, help="batches of 1,000 orders stored before measuring"
    )
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    )
    args = parser.parse_args()
    if not 1 <= args.seconds <= 300 or not 0 <= args.warmup <= 120:
        parser.error("--seconds must be 1..300 and --warmup 0..120")
    if not 1 <= args.concurrency <= 1024 or not 1 <= args.rounds <= 15:
        parser.error("--concurrency must be 1..1024 and --rounds 1..15")
    if not 1 <= args.customers <= 100_000 or not 1 <= args.pool_size <= 200:
        parser.error("--customers must be 1..100000 and --pool-size 1..200")
    if not 0 <= args.batches <= 1000 or not 1 <= args.batch_size <= 1000:
        parser.error("--batches must be 0..1000 and --batch-size 1..1000")
    if not 1 <= args.batch_clients <= 16:
        parser.error("--batch-clients must be 1..16")
    if not 0 <= args.history <= 100:
        parser.error("--history must be 0..100")
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    bindir = Path(sys.executable).parent
    kehu_bin = str(bindir / "kehu") if (bindir / "kehu").exists() else "kehu"
    tmp = Path(tempfile.mkdtemp(prefix="kehu-bench-orders-"))
    servers = {
        "kehu": Server("kehu", "kehu_bench_orders", [], tmp, "/healthz"),
        "raw": Server("raw", "kehu_bench_orders_raw", [], ROOT, "/openapi.json"),
    }
    kehu, raw = servers["kehu"], servers["raw"]
    kehu.command = [kehu_bin, "serve", "--host", "127.0.0.1", "--port", str(kehu.port)]
    raw.command = uvicorn_command("bench.raw_app", raw.port)
    url = {name: f"{args.pg}/{srv.database}" for name, srv in servers.items()}
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": url["kehu"],
        "KEHU_LOG_LEVEL": "warning",
        "KEHU_RATE_LIMIT": "10000000/minute",
        "KEHU_RUN_WORKER": "false",
        "KEHU_DB_POOL_SIZE": str(args.pool_size),
        "RAW_DATABASE_URL": url["raw"],
        "RAW_POOL_SIZE": str(args.pool_size),
    }
    logs = ExitStack()
    run_id = uuid.uuid4().hex[:8]
    try:
        for srv in servers.values():
            asyncio.run(recreate_db(args.pg, srv.database))
        key = migrate_and_mint_key(kehu_bin, env, tmp)
        seeded = subprocess.run(
            [kehu_bin, "seed", "--demo", "--count", str(args.customers)],
            env=env,
            cwd=tmp,
            timeout=300,
            capture_output=True,
            text=True,
        )
        asyncio.run(seed_raw(url["raw"], args.customers))
        for srv in servers.values():
            srv.start(env, logs.enter_context((tmp / f"{srv.name}.err").open("wb")))
        for srv in servers.values():
            assert srv.proc is not None
            wait_ready(f"{srv.base}{srv.ready_path}", srv.proc)
        if seeded.returncode != 0:
            seed_kehu_rest(kehu.base, key, args.customers)
        ids = asyncio.run(kehu_ids(url["kehu"], args.customers))
        if not ids:
            raise RuntimeError("no customers seeded in Kehu's database")
        auth = {"Authorization": f"Bearer {key}"}
        sample = order_body(ids[0], f"sanity-{run_id}")
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
                    run_id=f"{run_id}h",
                )
            )
            asyncio.run(analyze(url["kehu"]))

        scripts = {
            "raw_post": lua_post("/customers", {}),
            "kehu_order": lua_order(ids, auth),
        }
        rounds: dict[str, list[Result]] = {s.key: [] for s in ORDER_PLAN}
        for round_no in range(args.rounds):
            for s in ORDER_PLAN:
                server = servers[s.server]
                script = tmp / f"{s.key}.lua"
                script.write_text(scripts[s.key])
                print(f"· round {round_no + 1}/{args.rounds}: {s.label}", flush=True)
                rounds[s.key].append(
                    run_wrk(
                        s.label,
                        server.base,
                        script,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        concurrency=args.concurrency,
                        threads=1,
                        run_id=f"{run_id}r{round_no}",
                        pid=server.pid,
                    )
                )
                if server.proc is not None and server.proc.poll() is not None:
                    raise RuntimeError(f"{server.name} exited during {s.label}")
        print(
            f"\nwrk -t1 -c{args.concurrency}, {args.warmup}s warm-up + {args.seconds}s per "
            f"scenario, median of {args.rounds} round(s); {args.customers} customers; "
            f"pool {args.pool_size}; 1 uvicorn worker each"
        )
        print(table(rows(ORDER_PLAN, rounds)))
        if args.batches:
            print(f"\n· {args.batches} batches of {args.batch_size} orders × 2 lines", flush=True)
            figures = asyncio.run(
                run_batches(
                    kehu.base,
                    auth,
                    ids,
                    batches=args.batches,
                    size=args.batch_size,
                    clients=args.batch_clients,
                    run_id=run_id,
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
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _cleanup(servers, tmp, args.pg, lambda s: print(s, file=sys.stderr))
        logs.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
