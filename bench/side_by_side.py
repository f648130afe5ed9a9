"""Kehu against the raw app's single-row insert, side by side: the setup, the wrk rounds and the
clean-up that bench/interactions.py and bench/orders.py share.

`side_by_side` creates two fresh databases (Kehu's migrated, with an admin key and `--customers`
demo customers; the raw app's table), starts `kehu serve` and `uvicorn bench.raw_app:app` (1 worker
each, the same DB pool size, the job worker off), each in its own session, and on the way out stops
them and drops the databases (also on Ctrl-C or an error).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.run import (
    Result,
    Scenario,
    Server,
    _cleanup,
    _terminate,
    kehu_ids,
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

ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=int, default=10, help="measurement per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections")
    parser.add_argument("--customers", type=int, default=1000, help="customers seeded in Kehu")
    parser.add_argument("--pool-size", type=int, default=10, help="DB pool of each server")
    parser.add_argument("--rounds", type=int, default=1, help="each figure is the median round")
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``parser.error`` (exit 2) for an argument out of its range, or without wrk."""
    if not 1 <= args.seconds <= 300 or not 0 <= args.warmup <= 120:
        parser.error("--seconds must be 1..300 and --warmup 0..120")
    if not 1 <= args.concurrency <= 1024 or not 1 <= args.rounds <= 15:
        parser.error("--concurrency must be 1..1024 and --rounds 1..15")
    if not 1 <= args.customers <= 100_000 or not 1 <= args.pool_size <= 200:
        parser.error("--customers must be 1..100000 and --pool-size 1..200")
    if shutil.which("wrk") is None:
        parser.error("wrk is required: apt-get install -y wrk")


@dataclass
class Run:
    """The two servers, up, with what a scenario needs to load Kehu."""

    servers: dict[str, Server]
    tmp: Path
    url: dict[str, str]
    ids: list[str]  # seeded Kehu customers
    auth: dict[str, str]  # Kehu's admin key, as a header
    run_id: str

    @property
    def kehu(self) -> Server:
        return self.servers["kehu"]


@contextmanager
def side_by_side(args: argparse.Namespace, name: str) -> Iterator[Run]:
    """Both servers up for the block (databases kehu_bench_<name> and kehu_bench_<name>_raw)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    bindir = Path(sys.executable).parent
    kehu_bin = str(bindir / "kehu") if (bindir / "kehu").exists() else "kehu"
    tmp = Path(tempfile.mkdtemp(prefix=f"kehu-bench-{name}-"))
    servers = {
        "kehu": Server("kehu", f"kehu_bench_{name}", [], tmp, "/healthz"),
        "raw": Server("raw", f"kehu_bench_{name}_raw", [], ROOT, "/openapi.json"),
    }
    kehu, raw = servers["kehu"], servers["raw"]
    kehu.command = [kehu_bin, "serve", "--host", "127.0.0.1", "--port", str(kehu.port)]
    raw.command = uvicorn_command("bench.raw_app", raw.port)
    url = {key: f"{args.pg}/{srv.database}" for key, srv in servers.items()}
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
    try:
        for srv in servers.values():
            asyncio.run(recreate_db(args.pg, srv.database))
        key = migrate_and_mint_key(kehu_bin, env, tmp)
        seeded = subprocess.run(
            [kehu_bin, "seed", "--count", str(args.customers)],
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
        yield Run(servers, tmp, url, ids, {"Authorization": f"Bearer {key}"}, uuid.uuid4().hex[:8])
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _cleanup(servers, tmp, args.pg, lambda s: print(s, file=sys.stderr))
        logs.close()
        shutil.rmtree(tmp, ignore_errors=True)


def measure(
    run: Run, args: argparse.Namespace, plan: list[Scenario], scripts: dict[str, str]
) -> None:
    """``args.rounds`` rounds of wrk over each scenario of ``plan`` (its Lua in ``scripts``, by
    key); prints the table, each figure its median round."""
    rounds: dict[str, list[Result]] = {s.key: [] for s in plan}
    for round_no in range(args.rounds):
        for s in plan:
            server = run.servers[s.server]
            script = run.tmp / f"{s.key}.lua"
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
                    run_id=f"{run.run_id}r{round_no}",
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
    print(table(rows(plan, rounds)))
