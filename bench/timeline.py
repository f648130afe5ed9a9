"""The customer timeline of a customer with 10,000 entries, paged 50 at a time through REST.

    uv run python bench/timeline.py [--entries 10000] [--limit 50] [--passes 3] [--pg URL]

1. Creates its own database (on --pg, default KEHU_TEST_DATABASE_URL's server, else
   postgresql://postgres@127.0.0.1:5432), migrates it and mints an admin key (`kehu migrate`,
   `kehu keys create`).
2. Writes one customer with --entries entries: 40 % interactions, 20 % cases, 20 % case status
   changes (of those cases), 20 % feedback, spread over two years (ties included), plus 2,000 other customers with
   a few entries each so the indexes are not the customer's alone. ANALYZE.
3. Starts `kehu serve` (1 worker, no background worker) on a free port of 127.0.0.1 and walks the
   whole timeline page by page (`?limit=50&cursor=…`) --passes times on one keep-alive
   connection, checking every page (count, order, no entry twice); then reads pages at random
   depths from the cursors collected. Prints p50/p90/p99/max per request.
4. Stops the server and drops the database (also on an error). Bounded by timeouts.

The client, the server and PostgreSQL share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information (as in app/)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.ids import new_id  # noqa: E402
from bench.event_latency import create_database, drop_database, percentile  # noqa: E402
from bench.run import free_port, migrate_and_mint_key, stop, wait_ready  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
TWO_YEARS = 2 * 365 * 24 * 3600


def _at(rng: random.Random) -> datetime:
    # Whole minutes, so many entries share a time (ties across and within kinds).
    return START + timedelta(minutes=rng.randrange(TWO_YEARS // 60))


async def seed(url: str, entries: int, others: int) -> str:
    conn = await asyncpg.connect(url, timeout=30, command_timeout=600)
    try:
        rng = random.Random(7)
        customers = [new_id() for _ in range(others + 1)]
        await conn.copy_records_to_table(
            "customers",
            records=[(c, f"Timeline{i}") for i, c in enumerate(customers)],
            columns=["id", "first_name"],
        )
        subject = customers[0]
        owners = [subject] * entries + [rng.choice(customers[1:]) for _ in range(others * 5)]
        interactions, cases, transitions, feedback = [], [], [], []
        last_case: dict[uuid.UUID, uuid.UUID] = {}
        for n, owner in enumerate(owners):
            at = _at(rng)
            share = n % 5
            if share == 3 and owner in last_case:
                # A status change of one of the customer's cases (an entry of its own).
                transitions.append((owner, new_id(), last_case[owner], "open", "in_progress", at))
            elif share == 2:
                last_case[owner] = new_id()
                cases.append((owner, last_case[owner], "logistics", "normal", "open", "Late", at))
            elif share == 4:
                feedback.append((owner, new_id(), "nps", rng.randrange(11), at))
            else:
                interactions.append(
                    (owner, new_id(), "phone", "inbound", "call", "completed", "Call", at)
                )
        await conn.copy_records_to_table(
            "interactions",
            records=interactions,
            columns=[
                "customer_id",
                "id",
                "channel",
                "direction",
                "kind",
                "status",
                "subject",
                "occurred_at",
            ],
        )
        await conn.copy_records_to_table(
            "cases",
            records=cases,
            columns=["customer_id", "id", "category", "priority", "status", "subject", "opened_at"],
        )
        await conn.copy_records_to_table(
            "case_transitions",
            records=transitions,
            columns=["customer_id", "id", "case_id", "from_status", "to_status", "at"],
        )
        await conn.copy_records_to_table(
            "feedback",
            records=feedback,
            columns=["customer_id", "id", "kind", "score", "submitted_at"],
        )
        await conn.execute("ANALYZE")
        total = await conn.fetchval(
            "SELECT (SELECT count(*) FROM interactions WHERE customer_id = $1)"
            " + (SELECT count(*) FROM cases WHERE customer_id = $1)"
            " + (SELECT count(*) FROM case_transitions WHERE customer_id = $1)"
            " + (SELECT count(*) FROM feedback WHERE customer_id = $1)",
            subject,
        )
        print(f"· customer {subject}: {total} timeline entries ({len(owners) - entries} elsewhere)")
        return str(subject)
    finally:
        await conn.close()


class Client:
    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Authorization": f"Bearer {key}"}
        self.latencies: list[float] = []

    def page(self, customer_id: str, limit: int, cursor: str | None) -> dict[str, object]:
        path = f"/v1/customers/{customer_id}/timeline?limit={limit}"
        if cursor:
            path += f"&cursor={cursor}"
        started = time.perf_counter()
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        raw = response.read()
        self.latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {raw[:300]!r}")
        body: dict[str, object] = json.loads(raw)
        return body


def walk(client: Client, customer_id: str, limit: int) -> tuple[int, list[str]]:
    """Every page once; returns the number of entries and the cursors handed out."""
    seen: set[tuple[str, str]] = set()
    cursors: list[str] = []
    last: tuple[str, str, str] | None = None
    cursor: str | None = None
    while True:
        body = client.page(customer_id, limit, cursor)
        data = body["data"]
        assert isinstance(data, list)
        for entry in data:
            key = (entry["at"], entry["kind"], entry["id"])
            if last is not None and key >= last:
                raise RuntimeError(f"out of order: {key} after {last}")
            if (entry["kind"], entry["id"]) in seen:
                raise RuntimeError(f"read twice: {entry}")
            seen.add((entry["kind"], entry["id"]))
            last = key
        cursor = body["next_cursor"]  # type: ignore[assignment]
        if cursor is None:
            return len(seen), cursors
        if len(data) != limit:
            raise RuntimeError("a short page before the end")
        cursors.append(cursor)


def summary(name: str, latencies: list[float]) -> str:
    ms = [v * 1000 for v in latencies]
    return (
        f"| {name} | {len(ms)} | {percentile(ms, 0.5):.1f} | {percentile(ms, 0.9):.1f} | "
        f"{percentile(ms, 0.99):.1f} | {max(ms):.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=2_000, help="other customers")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--random-pages", type=int, default=600)
    default_pg = os.environ.get("KEHU_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg", default=default_pg)
    args = parser.parse_args()

    kehu_bin = shutil.which("kehu") or str(Path(sys.executable).parent / "kehu")
    name, url = asyncio.run(create_database(args.pg, "kehu_bench_timeline"))
    port = free_port()
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": url,
        "KEHU_LOG_LEVEL": "warning",
        "KEHU_RATE_LIMIT": "10000000/minute",
        "KEHU_RUN_WORKER": "false",
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        key = migrate_and_mint_key(kehu_bin, env)
        customer_id = asyncio.run(seed(url, args.entries, args.others))
        server = subprocess.Popen(
            [kehu_bin, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)

        warm = Client(port, key)
        count, cursors = walk(warm, customer_id, args.limit)  # warm-up pass, not counted
        client = Client(port, key)
        for _ in range(args.passes):
            again, _ = walk(client, customer_id, args.limit)
            if again != count:
                raise RuntimeError(f"{again} entries on a later pass, {count} on the first")
        walked = list(client.latencies)
        rng = random.Random(11)
        client.latencies.clear()
        for _ in range(args.random_pages):
            client.page(customer_id, args.limit, rng.choice(cursors))
        print(f"· {count} entries, {len(cursors) + 1} pages of {args.limit}, {args.passes} passes")
        print("| Timeline pages | requests | p50 ms | p90 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|---:|")
        print(summary("walked first to last", walked))
        print(summary("random depth (cursor)", client.latencies))
        return 0
    finally:
        stop(server)
        asyncio.run(drop_database(args.pg, name))


if __name__ == "__main__":
    raise SystemExit(main())
