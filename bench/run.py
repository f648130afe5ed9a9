"""Kehu against a minimal FastAPI + raw asyncpg app, on this machine, in one run.

    uv run python bench/run.py [--seconds 10] [--concurrency 32]

1. Creates two fresh databases (kehu_bench, kehu_bench_raw); migrates Kehu's, creates an admin key and
   seeds customers; creates the raw app's table and seeds the same number of rows.
2. Starts `kehu serve` and `uvicorn bench.raw_app:app` side by side (1 worker each, uvloop + httptools,
   no access log) on free ports of 127.0.0.1.
3. Loads each scenario with wrk (warm-up, then measurement), one after another, and prints requests/s,
   p50 and p99, and each Kehu figure as a ratio of the raw app's.
4. Stops both servers and drops both databases.

Everything is bounded: wrk runs for --seconds (plus --warmup), every subprocess has a timeout.
Needs `wrk` (Debian: `apt-get install -y wrk`) and a PostgreSQL you can create databases in
(--pg, default postgresql://postgres@127.0.0.1:5432).
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
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.raw_app import SCHEMA  # noqa: E402

GRAPHQL_QUERY = "query($id: ID!){ customer(id: $id){ id email firstName lastName city tags } }"
CITIES = ["Shanghai", "Beijing", "Berlin", "Paris", "Austin", "Lyon", "Osaka", "Porto"]


# --------------------------------------------------------------------------- wrk scripts

LUA_COMMON = r"""
local counter = 0
local tid = 0
local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1] or "x"
  math.randomseed(os.time() + (tid or 0) * 7919)
end
local function json_escape(s) return s end
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


def lua_get(path_prefix: str, ids: list[str], headers: dict[str, str]) -> str:
    id_list = ",".join(f'"{i}"' for i in ids)
    hdrs = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    return (
        LUA_COMMON
        + f"local ids = {{{id_list}}}\n{hdrs}"
        + "function request()\n"
        + f'  return wrk.format("GET", "{path_prefix}" .. ids[math.random(#ids)])\n'
        + "end\n"
    )


def lua_post(path: str, headers: dict[str, str]) -> str:
    hdrs = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    cities = ",".join(f'"{c}"' for c in CITIES)
    return (
        LUA_COMMON
        + f'wrk.headers["Content-Type"] = "application/json"\n{hdrs}'
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
    hdrs = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    query = json.dumps(GRAPHQL_QUERY)[1:-1].replace("\\", "\\\\").replace('"', '\\"')
    return (
        LUA_COMMON
        + f'wrk.headers["Content-Type"] = "application/json"\n{hdrs}'
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
            raw = response.read()
            status = response.status
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


async def recreate_db(pg: str, name: str) -> None:
    conn = await asyncpg.connect(f"{pg}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_db(pg: str, name: str) -> None:
    conn = await asyncpg.connect(f"{pg}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def seed_raw(url: str, count: int) -> list[str]:
    conn = await asyncpg.connect(url)
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
    conn = await asyncpg.connect(url)
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
        for line in out.stdout.splitlines():
            if line.startswith("WRKJSON "):
                return json.loads(line[len("WRKJSON ") :])  # type: ignore[no-any-return]
        raise RuntimeError(f"wrk gave no summary for {name}:\n{out.stdout}\n{out.stderr}")

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


def table(results: dict[str, Result], ratios: list[tuple[str, str, float]]) -> str:
    lines = [
        "| Scenario | req/s | p50 ms | p99 ms | server CPU ms/req | errors | × raw | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratio_of = {k: (base, target) for k, base, target in ratios}
    for key, r in results.items():
        ratio, target = "", ""
        if key in ratio_of and r.rps > 0:
            base, goal = ratio_of[key]
            if base not in results or not results[base].rps:
                lines.append(
                    f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                    f"{r.cpu_ms:.2f} | {r.errors} |  |  |"
                )
                continue
            value = r.rps / results[base].rps
            ratio, target = f"{value:.2f}", f"≥ {goal:.2f} {'ok' if value >= goal else 'MISS'}"
        rps = f"{r.rps:,.0f}" if r.rps else "n/a"
        p50 = f"{r.p50_ms:.2f}" if r.rps else "n/a"
        p99 = f"{r.p99_ms:.2f}" if r.rps else "n/a"
        note = f" ({r.note})" if r.note else ""
        cpu = f"{r.cpu_ms:.2f}" if r.rps else "n/a"
        lines.append(
            f"| {r.name}{note} | {rps} | {p50} | {p99} | {cpu} | {r.errors} | {ratio} | {target} |"
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
    args.profile.mkdir(parents=True, exist_ok=True)
    for key_name in ("kehu_get", "kehu_post"):
        script = tmp / f"{key_name}.lua"
        script.write_text(scripts[key_name])
        out = args.profile / f"{key_name}.txt"
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
        try:
            recorder.wait(timeout=args.seconds + 30)
        except subprocess.TimeoutExpired:
            recorder.kill()
        print(f"  under the profiler: {result.rps:,.0f} req/s", flush=True)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="measurement per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--customers", type=int, default=1000, help="rows seeded in each database")
    parser.add_argument("--pool-size", type=int, default=10, help="DB pool of each server")
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole plan; each figure is the round with the median req/s",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="after measuring, record py-spy profiles (collapsed stacks) of Kehu's "
        "REST read and create into this folder (needs py-spy; not in the figures)",
    )
    parser.add_argument(
        "--scenarios",
        default="raw_get,kehu_get,kehu_graphql,raw_post,kehu_post",
        help="which scenarios to measure (comma list)",
    )
    parser.add_argument("--keep", action="store_true", help="leave servers up until Enter (debug)")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 300 or not 1 <= args.concurrency <= 1024:
        parser.error("--seconds must be 1..300 and --concurrency 1..1024")
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 2

    kehu_db, raw_db = "kehu_bench", "kehu_bench_raw"
    kehu_url, raw_url = f"{args.pg}/{kehu_db}", f"{args.pg}/{raw_db}"
    bindir = Path(sys.executable).parent
    kehu_bin = str(bindir / "kehu") if (bindir / "kehu").exists() else "kehu"
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": kehu_url,
        "KEHU_LOG_LEVEL": "warning",
        "KEHU_RATE_LIMIT": "10000000/minute",
        "KEHU_RUN_WORKER": "false",
        "KEHU_DB_POOL_SIZE": str(args.pool_size),
        "RAW_DATABASE_URL": raw_url,
        "RAW_POOL_SIZE": str(args.pool_size),
    }
    kehu_proc = raw_proc = None
    logs = ExitStack()
    tmp = Path(tempfile.mkdtemp(prefix="kehu-bench-"))
    run_id = uuid.uuid4().hex[:8]
    try:
        print(f"· databases {kehu_db}, {raw_db}", flush=True)
        asyncio.run(recreate_db(args.pg, kehu_db))
        asyncio.run(recreate_db(args.pg, raw_db))
        subprocess.run(
            [kehu_bin, "migrate"],
            env=env,
            cwd=tmp,
            check=True,
            timeout=180,
            stdout=subprocess.DEVNULL,
        )
        created = subprocess.run(
            [kehu_bin, "keys", "create", "--scope", "admin", "--name", "bench"],
            env=env,
            cwd=tmp,
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        )
        key = created.stdout.strip().splitlines()[-1].strip()
        seeded = subprocess.run(
            [kehu_bin, "seed", "--demo", "--count", str(args.customers)],
            env=env,
            cwd=tmp,
            timeout=300,
            capture_output=True,
            text=True,
        )
        raw_ids = asyncio.run(seed_raw(raw_url, args.customers))

        kehu_port, raw_port = free_port(), free_port()
        kehu_base, raw_base = f"http://127.0.0.1:{kehu_port}", f"http://127.0.0.1:{raw_port}"
        print(f"· kehu serve on {kehu_port}, raw app on {raw_port}", flush=True)
        kehu_command = [kehu_bin, "serve", "--host", "127.0.0.1", "--port", str(kehu_port)]
        kehu_proc = subprocess.Popen(
            kehu_command,
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=logs.enter_context((tmp / "kehu.err").open("wb")),
        )
        raw_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.raw_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(raw_port),
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=logs.enter_context((tmp / "raw.err").open("wb")),
        )
        wait_ready(f"{kehu_base}/healthz", kehu_proc)
        wait_ready(f"{raw_base}/openapi.json", raw_proc)

        if seeded.returncode != 0:
            print("· `kehu seed --demo` failed; seeding through POST /v1/customers", flush=True)
            seed_kehu_rest(kehu_base, key, args.customers)
        ids = asyncio.run(kehu_ids(kehu_url, args.customers))
        if not ids:
            raise RuntimeError("no customers seeded in Kehu's database")
        auth = {"Authorization": f"Bearer {key}"}

        # Sanity checks (one request each) before loading.
        status, _ = http("GET", f"{kehu_base}/v1/customers/{ids[0]}", headers=auth)
        assert status == 200, f"Kehu GET answered {status}"
        status, _ = http("GET", f"{raw_base}/customers/{raw_ids[0]}")
        assert status == 200, f"raw GET answered {status}"
        status, body = http(
            "POST",
            f"{kehu_base}/graphql",
            {"query": GRAPHQL_QUERY, "variables": {"id": ids[0]}},
            auth,
        )
        graphql_ok = (
            status == 200
            and isinstance(body, dict)
            and not body.get("errors")
            and isinstance(body.get("data"), dict)
            and body["data"].get("customer")
        )
        graphql_note = "" if graphql_ok else f"not ready: HTTP {status} {str(body)[:160]}"
        if graphql_note:
            print(f"· GraphQL customer(id) {graphql_note}", flush=True)

        scripts = {
            "raw_get": lua_get("/customers/", raw_ids, {}),
            "kehu_get": lua_get("/v1/customers/", ids, auth),
            "kehu_graphql": lua_graphql(ids, auth),
            "raw_post": lua_post("/customers", {}),
            "kehu_post": lua_post("/v1/customers", auth),
        }
        plan = [
            ("raw_get", "raw GET /customers/{id}", raw_base, raw_proc.pid),
            ("kehu_get", "Kehu GET /v1/customers/{id}", kehu_base, kehu_proc.pid),
            ("kehu_graphql", "Kehu GraphQL customer(id)", kehu_base, kehu_proc.pid),
            ("raw_post", "raw POST /customers", raw_base, raw_proc.pid),
            ("kehu_post", "Kehu POST /v1/customers", kehu_base, kehu_proc.pid),
        ]
        wanted = set(args.scenarios.split(","))
        plan = [p for p in plan if p[0] in wanted]
        rounds: dict[str, list[Result]] = {k: [] for k, _, _, _ in plan}
        for round_no in range(args.rounds):
            for key_name, label, base, pid in plan:
                if key_name == "kehu_graphql" and not graphql_ok:
                    rounds[key_name].append(Result(label, 0, 0, 0, 0, 0, note="schema not ready"))
                    continue
                script = tmp / f"{key_name}.lua"
                script.write_text(scripts[key_name])
                print(
                    f"· round {round_no + 1}: {label}: {args.warmup}s warm-up + {args.seconds}s",
                    flush=True,
                )
                rounds[key_name].append(
                    run_wrk(
                        label,
                        base,
                        script,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        concurrency=args.concurrency,
                        threads=args.threads,
                        run_id=f"{run_id}r{round_no}",
                        pid=pid,
                    )
                )
        results = {k: sorted(v, key=lambda r: r.rps)[len(v) // 2] for k, v in rounds.items()}
        if args.rounds > 1:
            for k, v in rounds.items():
                print(
                    f"  {results[k].name}: req/s per round "
                    + ", ".join(f"{r.rps:,.0f}" for r in v),
                    flush=True,
                )

        ratios = [
            ("kehu_get", "raw_get", 0.5),
            ("kehu_post", "raw_post", 0.4),
            ("kehu_graphql", "raw_get", 0.35),
        ]
        print()
        print(
            f"wrk -t{args.threads} -c{args.concurrency}, {args.warmup}s warm-up + {args.seconds}s "
            f"per scenario; {args.customers} customers; pool {args.pool_size}; "
            f"1 uvicorn worker each"
        )
        print(table(results, ratios))
        if graphql_note:
            print(f"\nGraphQL: {graphql_note}")
        if args.profile is not None:
            profile(args, kehu_proc, kehu_base, tmp, scripts, run_id)
        if args.keep:
            print(f"\nKehu {kehu_base} (key {key}), raw {raw_base}; Enter to stop.")
            input()
        return 0
    finally:
        for label, proc, log in (
            ("kehu serve", kehu_proc, "kehu.err"),
            ("raw app", raw_proc, "raw.err"),
        ):
            if proc is not None and proc.poll() is not None:
                tail = (
                    (tmp / log).read_text(errors="replace")[-3000:] if (tmp / log).exists() else ""
                )
                print(f"{label} exited early ({proc.returncode}):\n{tail}", file=sys.stderr)
        stop(kehu_proc)
        stop(raw_proc)
        for name in (kehu_db, raw_db):
            try:
                asyncio.run(drop_db(args.pg, name))
            except Exception as exc:
                print(f"could not drop {name}: {exc}", file=sys.stderr)
        logs.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
