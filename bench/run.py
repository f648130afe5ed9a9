"""Kehu against a minimal FastAPI + raw asyncpg app and a tutorial-style FastAPI + SQLAlchemy ORM app,
on this machine, in one run.

    uv run python bench/run.py [--seconds 10] [--warmup 3] [--concurrency 32] [--rounds 3] [--json F]

1. Creates three fresh databases (kehu_bench, kehu_bench_raw, kehu_bench_orm); migrates Kehu's,
   creates an admin key and seeds customers; creates the raw and ORM apps' table (bench/raw_app.py
   SCHEMA) in theirs and seeds the same number of rows.
2. Starts `kehu serve`, `uvicorn bench.raw_app:app` and `uvicorn bench.orm_app:app` side by side
   (1 worker each, uvloop + httptools, no access log, the same DB pool size) on free ports of
   127.0.0.1, each in its own session so a Ctrl-C reaches only this script, which then stops them.
3. Loads each scenario in turn with wrk (warm-up, then measurement): raw REST read, ORM REST read,
   ORM GraphQL read, Kehu REST read, Kehu GraphQL read, raw create, ORM create, Kehu create. With
   --rounds N the whole plan repeats and each scenario's figure is its median round (by req/s).
4. Prints a markdown table: req/s, p50, p99, the server's CPU ms per request (from /proc/<pid>/stat
   before and after the measured window), and the ratios against the raw and the ORM app; with
   --json PATH also writes the figures there.
5. Stops the servers and drops the databases (also on Ctrl-C, SIGTERM or an error).

Everything is bounded: wrk runs for --seconds (plus --warmup), every subprocess and database call
has a timeout. Needs `wrk` (Debian: `apt-get install -y wrk`) and a PostgreSQL you can create
databases in (--pg, default postgresql://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information (as in app/)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.raw_app import SCHEMA  # noqa: E402

GRAPHQL_QUERY = "query($id: ID!){ customer(id: $id){ id email firstName lastName city tags } }"
CITIES = ["Shanghai", "Beijing", "Berlin", "Paris", "Austin", "Lyon", "Osaka", "Porto"]
DB_TIMEOUT = 30.0  # seconds, for every connect and statement of this script


# --------------------------------------------------------------------------- wrk scripts

LUA_COMMON = r"""
local counter = 0
local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1] or "x"
  tid = tid or 0
  math.randomseed(os.time() + tid * 7919)
end
function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "status_errors": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"""


def _lua_headers(headers: dict[str, str]) -> str:
    return "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())


def lua_get(path_prefix: str, ids: list[str], headers: dict[str, str]) -> str:
    id_list = ",".join(f'"{i}"' for i in ids)
    return (
        LUA_COMMON
        + f"local ids = {{{id_list}}}\n{_lua_headers(headers)}"
        + "function request()\n"
        + f'  return wrk.format("GET", "{path_prefix}" .. ids[math.random(#ids)])\n'
        + "end\n"
    )


def lua_post(path: str, headers: dict[str, str]) -> str:
    cities = ",".join(f'"{c}"' for c in CITIES)
    return (
        LUA_COMMON
        + f'wrk.headers["Content-Type"] = "application/json"\n{_lua_headers(headers)}'
        + f"local cities = {{{cities}}}\n"
        + "function request()\n"
        + "  counter = counter + 1\n"
        + '  local body = string.format(\'{"email": "%s-%d-%d@example.com", "first_name": "Bench", '
        + '"last_name": "User%d", "city": "%s", "tags": ["bench", "load"]}\', '
        + "prefix, tid, counter, counter, cities[(counter % #cities) + 1])\n"
        + f'  return wrk.format("POST", "{path}", nil, body)\n'
        + "end\n"
    )


def lua_graphql(ids: list[str], headers: dict[str, str]) -> str:
    id_list = ",".join(f'"{i}"' for i in ids)
    query = json.dumps(GRAPHQL_QUERY)[1:-1].replace("\\", "\\\\").replace('"', '\\"')
    return (
        LUA_COMMON
        + f'wrk.headers["Content-Type"] = "application/json"\n{_lua_headers(headers)}'
        + f"local ids = {{{id_list}}}\n"
        + "function request()\n"
        + "  local id = ids[math.random(#ids)]\n"
        + f'  local body = "{{\\"query\\": \\"{query}\\", \\"variables\\": {{\\"id\\": \\"" .. id .. "\\"}}}}"\n'
        + '  return wrk.format("POST", "/graphql", nil, body)\n'
        + "end\n"
    )


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str,
    url: str,
    body: object | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw: bytes = response.read()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 500:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def migrate_and_mint_key(kehu_bin: str, env: dict[str, str], cwd: Path | None = None) -> str:
    """`kehu migrate`, then `kehu keys create --scope admin` on env's KEHU_DATABASE_URL; the key."""
    subprocess.run(
        [kehu_bin, "migrate"], env=env, cwd=cwd, check=True, timeout=180, capture_output=True
    )
    created = subprocess.run(
        [kehu_bin, "keys", "create", "--scope", "admin", "--name", "bench"],
        env=env,
        cwd=cwd,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    return created.stdout.strip().splitlines()[-1].strip()


async def _admin(pg: str, *statements: str) -> None:
    conn = await asyncpg.connect(f"{pg}/postgres", timeout=DB_TIMEOUT, command_timeout=DB_TIMEOUT)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def recreate_db(pg: str, name: str) -> None:
    await _admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')


async def drop_db(pg: str, name: str) -> None:
    await _admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def seed_raw(url: str, count: int) -> list[str]:
    """The raw and ORM apps' table (SCHEMA) with `count` rows; their ids."""
    conn = await asyncpg.connect(url, timeout=DB_TIMEOUT, command_timeout=DB_TIMEOUT * 4)
    try:
        await conn.execute(SCHEMA)
        rows = [
            (
                uuid.uuid4(),
                f"seed-{i}@example.com",
                "Seed",
                f"User{i}",
                CITIES[i % len(CITIES)],
                ["seed"],
            )
            for i in range(count)
        ]
        await conn.executemany(
            "INSERT INTO customers (id, email, first_name, last_name, city, tags) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            rows,
        )
        await conn.execute("ANALYZE customers")
        return [str(r[0]) for r in rows]
    finally:
        await conn.close()


async def kehu_ids(url: str, count: int) -> list[str]:
    conn = await asyncpg.connect(url, timeout=DB_TIMEOUT, command_timeout=DB_TIMEOUT)
    try:
        await conn.execute("ANALYZE")
        rows = await conn.fetch(
            "SELECT id FROM customers WHERE deleted_at IS NULL ORDER BY random() LIMIT $1", count
        )
        return [str(r["id"]) for r in rows]
    finally:
        await conn.close()


def seed_kehu_rest(base: str, key: str, count: int) -> None:
    """Fallback seeding through the API (when `kehu seed --demo` is not available)."""
    from concurrent.futures import ThreadPoolExecutor

    auth = {"Authorization": f"Bearer {key}"}

    def one(i: int) -> int:
        status, _ = http(
            "POST",
            f"{base}/v1/customers",
            {
                "email": f"seed-{i}@example.com",
                "first_name": "Seed",
                "last_name": f"User{i}",
                "city": CITIES[i % len(CITIES)],
                "tags": ["seed"],
            },
            auth,
        )
        return status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(count)))
    bad = [s for s in statuses if s != 201]
    if bad:
        raise RuntimeError(f"seeding through REST: {len(bad)} failures, e.g. HTTP {bad[0]}")


def graphql_problem(base: str, customer_id: str, headers: dict[str, str]) -> str:
    """Empty when `customer(id)` answers with the customer; else what went wrong."""
    status, body = http(
        "POST",
        f"{base}/graphql",
        {"query": GRAPHQL_QUERY, "variables": {"id": customer_id}},
        headers,
    )
    data = body.get("data") if isinstance(body, dict) else None
    if (
        status == 200
        and isinstance(body, dict)
        and not body.get("errors")
        and isinstance(data, dict)
        and data.get("customer")
    ):
        return ""
    return f"not ready: HTTP {status} {str(body)[:160]}"


# --------------------------------------------------------------------------- measuring


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_ms: float = 0.0
    note: str = ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk_summary(stdout: str) -> dict[str, float] | None:
    for line in stdout.splitlines():
        if line.startswith("WRKJSON "):
            data: object = json.loads(line[len("WRKJSON ") :])
            if isinstance(data, dict):
                return {str(k): float(v) for k, v in data.items()}
    return None


def run_wrk(
    name: str,
    base: str,
    script: Path,
    *,
    seconds: int,
    warmup: int,
    concurrency: int,
    threads: int,
    run_id: str,
    pid: int | None = None,
) -> Result:
    def once(duration: int, prefix: str) -> dict[str, float]:
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
            "--",
            prefix,
        ]
        out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
        summary = _wrk_summary(out.stdout)
        if summary is None:
            raise RuntimeError(f"wrk gave no summary for {name}:\n{out.stdout}\n{out.stderr}")
        return summary

    if warmup > 0:
        once(warmup, f"w{run_id}")
    cpu_before = cpu_seconds(pid) if pid else 0.0
    stats = once(seconds, f"m{run_id}")
    cpu_used = cpu_seconds(pid) - cpu_before if pid else 0.0
    errors = int(
        sum(
            stats[k]
            for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
        )
    )
    return Result(
        name=name,
        rps=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        errors=errors,
        requests=int(stats["requests"]),
        cpu_ms=1000 * cpu_used / max(1, stats["requests"]),
    )


# --------------------------------------------------------------------------- plan and report


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    server: str  # "kehu", "raw" or "orm"
    raw: str | None = None  # the raw app's scenario this one is compared with
    orm: str | None = None  # the ORM app's scenario this one is compared with (Kehu's rows)
    target: float | None = None  # Kehu's goal for req/s against `raw`


PLAN = [
    Scenario("raw_get", "raw GET /customers/{id}", "raw"),
    Scenario("orm_get", "ORM GET /customers/{id}", "orm", raw="raw_get"),
    Scenario("orm_graphql", "ORM GraphQL `customer(id)`", "orm", raw="raw_get"),
    Scenario("kehu_get", "Kehu GET /v1/customers/{id}", "kehu", "raw_get", "orm_get", 0.5),
    Scenario("kehu_graphql", "Kehu GraphQL `customer(id)`", "kehu", "raw_get", "orm_graphql", 0.3),
    Scenario("raw_post", "raw POST /customers", "raw"),
    Scenario("orm_post", "ORM POST /customers", "orm", raw="raw_post"),
    Scenario("kehu_post", "Kehu POST /v1/customers", "kehu", "raw_post", "orm_post", 0.4),
]


@dataclass
class Row:
    """One scenario's median round and its ratios (None where not applicable or not measured)."""

    key: str
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    errors: int
    requests: int
    rounds_rps: list[float]
    vs_raw: float | None = None
    vs_orm: float | None = None
    p99_vs_raw_p99: float | None = None
    target_vs_raw: float | None = None
    target_met: bool | None = None
    note: str = ""


def _ratio(num: float, den: float | None) -> float | None:
    return num / den if den and num else None


def rows(plan: list[Scenario], rounds: dict[str, list[Result]]) -> list[Row]:
    median = {k: sorted(v, key=lambda r: r.rps)[len(v) // 2] for k, v in rounds.items() if v}
    out = []
    for s in plan:
        if s.key not in median:
            continue
        r = median[s.key]
        raw = median.get(s.raw) if s.raw else None
        orm = median.get(s.orm) if s.orm else None
        row = Row(
            key=s.key,
            label=s.label,
            rps=r.rps,
            p50_ms=r.p50_ms,
            p99_ms=r.p99_ms,
            cpu_ms_per_request=r.cpu_ms,
            errors=r.errors,
            requests=r.requests,
            rounds_rps=[x.rps for x in rounds[s.key]],
            vs_raw=_ratio(r.rps, raw.rps if raw else None),
            vs_orm=_ratio(r.rps, orm.rps if orm else None),
            p99_vs_raw_p99=_ratio(r.p99_ms, raw.p99_ms if raw else None),
            target_vs_raw=s.target,
            note=r.note,
        )
        if s.target is not None and row.vs_raw is not None:
            row.target_met = row.vs_raw >= s.target
        out.append(row)
    return out


def table(report: list[Row]) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    lines = [
        "| Scenario | req/s | p50 ms | p99 ms | server CPU ms/req | errors "
        "| × raw | × ORM | p99 × raw p99 | target (× raw) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report:
        label = f"{r.label} ({r.note})" if r.note else r.label
        if not r.rps:
            lines.append(f"| {label} | n/a | n/a | n/a | n/a | {r.errors} |  |  |  |  |")
            continue
        target = ""
        if r.target_vs_raw is not None:
            verdict = "" if r.target_met is None else (" ok" if r.target_met else " MISS")
            target = f"≥ {r.target_vs_raw:.2f}{verdict}"
        lines.append(
            f"| {label} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.cpu_ms_per_request:.2f} | {r.errors} | {num(r.vs_raw, '.2f')} | "
            f"{num(r.vs_orm, '.2f')} | {num(r.p99_vs_raw_p99, '.1f')} | {target} |"
        )
    return "\n".join(lines)


def profile(
    args: argparse.Namespace,
    proc: subprocess.Popen[bytes],
    base: str,
    tmp: Path,
    scripts: dict[str, str],
    run_id: str,
) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found (uv pip install py-spy); skipping --profile", file=sys.stderr)
        return
    folder: Path = args.profile
    folder.mkdir(parents=True, exist_ok=True)
    for key_name in ("kehu_get", "kehu_post"):
        script = tmp / f"{key_name}.lua"
        script.write_text(scripts[key_name])
        out = folder / f"{key_name}.txt"
        print(f"· profiling {key_name} for {args.seconds}s into {out}", flush=True)
        recorder = subprocess.Popen(
            [
                spy,
                "record",
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(args.seconds),
                "--pid",
                str(proc.pid),
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result: Result | None = None
        try:
            time.sleep(0.5)
            result = run_wrk(
                key_name,
                base,
                script,
                seconds=args.seconds,
                warmup=0,
                concurrency=args.concurrency,
                threads=args.threads,
                run_id=f"{run_id}p",
            )
            recorder.wait(timeout=args.seconds + 30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait(timeout=5)
        if result is not None:
            print(f"  under the profiler: {result.rps:,.0f} req/s", flush=True)


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str  # "kehu", "raw" or "orm"
    database: str
    command: list[str]
    cwd: Path
    ready_path: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str], log: Any) -> None:
        # A session of its own: a Ctrl-C in the terminal reaches this script only, which then stops
        # the servers in order (and drops the databases) in its `finally`.
        self.proc = subprocess.Popen(
            self.command,
            env=env,
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def uvicorn_command(module: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"{module}:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="measurement per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--customers", type=int, default=1000, help="rows seeded in each database")
    parser.add_argument("--pool-size", type=int, default=10, help="DB pool of each server")
    parser.add_argument(
        "--kehu-log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="Kehu's KEHU_LOG_LEVEL: warning (default) writes no access lines, like the baselines; "
        "info adds one JSON access line per request (to stdout, which the run discards)",
    )
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole plan; each figure is the round with the median req/s (use an odd N)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="after measuring, record py-spy profiles (collapsed stacks) of Kehu's "
        "REST read and create into this folder (needs py-spy; not in the figures)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(s.key for s in PLAN),
        help="which scenarios to measure (comma list; default all, in this order)",
    )
    parser.add_argument("--keep", action="store_true", help="leave servers up until Enter (debug)")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 300 or not 1 <= args.concurrency <= 1024:
        parser.error("--seconds must be 1..300 and --concurrency 1..1024")
    if not 0 <= args.warmup <= 120 or not 1 <= args.rounds <= 15 or not 1 <= args.threads <= 64:
        parser.error("--warmup must be 0..120, --rounds 1..15 and --threads 1..64")
    if not 1 <= args.customers <= 100_000 or not 1 <= args.pool_size <= 200:
        parser.error("--customers must be 1..100000 and --pool-size 1..200")
    wanted = args.scenarios.split(",")
    unknown = sorted(set(wanted) - {s.key for s in PLAN})
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(s.key for s in PLAN)}")
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 2
    # Ctrl-C (also when started in the background, where SIGINT may come in ignored), SIGTERM and
    # SIGHUP all end in the `finally` below, which stops the servers and drops the databases.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    bindir = Path(sys.executable).parent
    kehu_bin = str(bindir / "kehu") if (bindir / "kehu").exists() else "kehu"
    tmp = Path(tempfile.mkdtemp(prefix="kehu-bench-"))
    servers = {
        "kehu": Server("kehu", "kehu_bench", [], tmp, "/healthz"),
        "raw": Server("raw", "kehu_bench_raw", [], ROOT, "/openapi.json"),
        "orm": Server("orm", "kehu_bench_orm", [], ROOT, "/openapi.json"),
    }
    kehu, raw, orm = servers["kehu"], servers["raw"], servers["orm"]
    # `kehu serve` runs uvicorn in its own process with 1 worker; uvicorn's "auto" loop and HTTP
    # implementation pick uvloop and httptools (both installed), and Kehu turns the access log off.
    kehu.command = [kehu_bin, "serve", "--host", "127.0.0.1", "--port", str(kehu.port)]
    raw.command = uvicorn_command("bench.raw_app", raw.port)
    orm.command = uvicorn_command("bench.orm_app", orm.port)
    url = {name: f"{args.pg}/{srv.database}" for name, srv in servers.items()}
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": url["kehu"],
        "KEHU_LOG_LEVEL": args.kehu_log_level,
        "KEHU_RATE_LIMIT": "10000000/minute",
        "KEHU_RUN_WORKER": "false",
        "KEHU_DB_POOL_SIZE": str(args.pool_size),
        "RAW_DATABASE_URL": url["raw"],
        "RAW_POOL_SIZE": str(args.pool_size),
        "ORM_DATABASE_URL": url["orm"],
        "ORM_POOL_SIZE": str(args.pool_size),
    }
    logs = ExitStack()
    run_id = uuid.uuid4().hex[:8]
    try:
        print(f"· databases {', '.join(srv.database for srv in servers.values())}", flush=True)
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
        raw_ids = asyncio.run(seed_raw(url["raw"], args.customers))
        orm_ids = asyncio.run(seed_raw(url["orm"], args.customers))

        print(
            "· "
            + ", ".join(f"{srv.name} on {srv.port}" for srv in servers.values())
            + f" (pool {args.pool_size} each)",
            flush=True,
        )
        for srv in servers.values():
            srv.start(env, logs.enter_context((tmp / f"{srv.name}.err").open("wb")))
        for srv in servers.values():
            assert srv.proc is not None
            wait_ready(f"{srv.base}{srv.ready_path}", srv.proc)

        if seeded.returncode != 0:
            print("· `kehu seed --demo` failed; seeding through POST /v1/customers", flush=True)
            seed_kehu_rest(kehu.base, key, args.customers)
        ids = asyncio.run(kehu_ids(url["kehu"], args.customers))
        if not ids:
            raise RuntimeError("no customers seeded in Kehu's database")
        auth = {"Authorization": f"Bearer {key}"}

        # Sanity checks (one request each) before loading.
        for base, path, headers in (
            (kehu.base, f"/v1/customers/{ids[0]}", auth),
            (raw.base, f"/customers/{raw_ids[0]}", {}),
            (orm.base, f"/customers/{orm_ids[0]}", {}),
        ):
            status, body = http("GET", f"{base}{path}", headers=headers)
            if status != 200:
                raise RuntimeError(f"GET {base}{path} answered {status}: {str(body)[:300]}")
        for base, path, headers in (
            (kehu.base, "/v1/customers", auth),
            (raw.base, "/customers", {}),
            (orm.base, "/customers", {}),
        ):
            sample = {"email": f"sanity-{run_id}@example.com", "tags": ["sanity"]}
            status, body = http("POST", f"{base}{path}", sample, headers)
            if status != 201:
                raise RuntimeError(f"POST {base}{path} answered {status}: {str(body)[:300]}")
        skipped = {
            "kehu_graphql": graphql_problem(kehu.base, ids[0], auth),
            "orm_graphql": graphql_problem(orm.base, orm_ids[0], {}),
        }
        for k, problem in skipped.items():
            if problem:
                print(f"· {k}: GraphQL customer(id) {problem}", flush=True)

        scripts = {
            "raw_get": lua_get("/customers/", raw_ids, {}),
            "orm_get": lua_get("/customers/", orm_ids, {}),
            "orm_graphql": lua_graphql(orm_ids, {}),
            "kehu_get": lua_get("/v1/customers/", ids, auth),
            "kehu_graphql": lua_graphql(ids, auth),
            "raw_post": lua_post("/customers", {}),
            "orm_post": lua_post("/customers", {}),
            "kehu_post": lua_post("/v1/customers", auth),
        }
        plan = [s for s in PLAN if s.key in wanted]
        rounds: dict[str, list[Result]] = {s.key: [] for s in plan}
        for round_no in range(args.rounds):
            for s in plan:
                server = servers[s.server]
                if skipped.get(s.key):
                    rounds[s.key].append(Result(s.label, 0, 0, 0, 0, 0, note="schema not ready"))
                    continue
                script = tmp / f"{s.key}.lua"
                script.write_text(scripts[s.key])
                print(
                    f"· round {round_no + 1}/{args.rounds}: {s.label}: "
                    f"{args.warmup}s warm-up + {args.seconds}s",
                    flush=True,
                )
                rounds[s.key].append(
                    run_wrk(
                        s.label,
                        server.base,
                        script,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        concurrency=args.concurrency,
                        threads=args.threads,
                        run_id=f"{run_id}r{round_no}",
                        pid=server.pid,
                    )
                )
                if server.proc is not None and server.proc.poll() is not None:
                    raise RuntimeError(f"{server.name} exited during {s.label}")
        report = rows(plan, rounds)
        if args.rounds > 1:
            for r in report:
                print(
                    f"  {r.label}: req/s per round " + ", ".join(f"{x:,.0f}" for x in r.rounds_rps),
                    flush=True,
                )

        setup = (
            f"wrk -t{args.threads} -c{args.concurrency}, {args.warmup}s warm-up + {args.seconds}s "
            f"per scenario, median of {args.rounds} round(s); {args.customers} customers; "
            f"pool {args.pool_size}; 1 uvicorn worker each"
        )
        print()
        print(setup)
        print(table(report))
        for k, problem in skipped.items():
            if problem:
                print(f"\n{k}: {problem}")
        if args.json is not None:
            document = {
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "setup": setup,
                "settings": {
                    k: v for k, v in vars(args).items() if isinstance(v, int | str | float)
                },
                "scenarios": {r.key: asdict(r) for r in report},
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
            print(f"\nfigures written to {args.json}")
        if args.profile is not None and kehu.proc is not None:
            profile(args, kehu.proc, kehu.base, tmp, scripts, run_id)
        if args.keep:
            print(f"\nKehu {kehu.base} (key {key}), raw {raw.base}, ORM {orm.base}; Enter to stop.")
            input()
        return 0
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\n· interrupted ({type(exc).__name__}); stopping the servers", file=sys.stderr)
        if isinstance(exc, KeyboardInterrupt):
            return 130
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        _cleanup(servers, tmp, args.pg, lambda s: print(s, file=sys.stderr))
        logs.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _cleanup(servers: dict[str, Server], tmp: Path, pg: str, say: Callable[[str], None]) -> None:
    for s in servers.values():
        if s.proc is not None and s.proc.poll() is not None:
            log = tmp / f"{s.name}.err"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            say(f"{s.name} exited early ({s.proc.returncode}):\n{tail}")
    for s in servers.values():
        try:
            stop(s.proc)
        except Exception as exc:
            say(f"could not stop {s.name}: {exc}")
    for s in servers.values():
        try:
            asyncio.run(drop_db(pg, s.database))
        except Exception as exc:
            say(f"could not drop {s.database}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
