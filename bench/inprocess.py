"""Per-request cost of Kehu's REST read and create, in process (ASGI calls, no HTTP, no load
generator), one request at a time, optionally under cProfile.

    uv run python bench/inprocess.py [--n 2000] [--cprofile get|post]

It creates and drops its own databases (kehu_bench_inproc, kehu_bench_inproc_raw). The raw app is
measured the same way, so each figure has its raw counterpart. Figures are median µs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.run import drop_db, recreate_db  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
KEHU_DB, RAW_DB = "kehu_bench_inproc", "kehu_bench_inproc_raw"


Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
Step = Callable[[int], Awaitable[None]]


async def call(
    app: ASGIApp, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode())]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent = False
    status, chunks = 0, list[bytes]()

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


cpu_per_request: list[float] = []


def timed_loop(n: int) -> Callable[[Step], Awaitable[list[float]]]:
    async def run(fn: Step) -> list[float]:
        out: list[float] = []
        cpu = time.process_time()
        for i in range(n):
            t = time.perf_counter()
            await fn(i)
            out.append((time.perf_counter() - t) * 1e6)
        cpu_per_request.append((time.process_time() - cpu) * 1e6 / n)
        return out

    return run


async def measure(args: argparse.Namespace) -> dict[str, float]:
    os.environ["KEHU_DATABASE_URL"] = f"{PG}/{KEHU_DB}"
    os.environ["RAW_DATABASE_URL"] = f"{PG}/{RAW_DB}"
    os.environ.setdefault("KEHU_LOG_LEVEL", "warning")
    os.environ.setdefault("KEHU_RATE_LIMIT", "10000000/minute")
    os.environ["KEHU_RUN_WORKER"] = "false"
    from app.apikeys import service as keys
    from app.apikeys.schemas import ApiKeyCreate
    from app.core.config import get_settings
    from app.db import engine as db
    from app.main import create_app
    from bench import raw_app

    settings = get_settings()
    app = create_app(settings, database_url=settings.database_url)
    results: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        async with db.unit_of_work() as session:
            _, secret = await keys.create_key(
                session, None, ApiKeyCreate(name="b", scopes=["admin"])
            )
        auth = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
        ids: list[str] = []
        run = timed_loop(args.n)
        tag = uuid.uuid4().hex[:6]

        counter = iter(range(10**9))

        def body(i: int, p: str) -> bytes:
            return json.dumps(
                {
                    "email": f"{p}{tag}-{next(counter)}@example.com",
                    "first_name": "Bench",
                    "last_name": f"User{i}",
                    "city": "Berlin",
                    "tags": ["bench", "load"],
                }
            ).encode()

        async def post(i: int) -> None:
            status, data = await call(app, "POST", "/v1/customers", auth, body(i, "p"))
            assert status == 201, (status, data[:300])
            if len(ids) < 500:
                ids.append(json.loads(data)["id"])

        async def get(i: int) -> None:
            status, data = await call(app, "GET", f"/v1/customers/{ids[i % len(ids)]}", auth)
            assert status == 200, (status, data[:300])

        await timed_loop(200)(post)  # warm-up, also the rows to read
        await timed_loop(200)(get)
        if args.cprofile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            await run(post if args.cprofile == "post" else get)
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats("cumulative")
            stats.print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
            return {}
        results["kehu_post_us"] = statistics.median(await run(post))
        results["kehu_post_cpu_us"] = cpu_per_request[-1]
        results["kehu_get_us"] = statistics.median(await run(get))
        results["kehu_get_cpu_us"] = cpu_per_request[-1]

    async with raw_app.app.router.lifespan_context(raw_app.app):
        assert raw_app.pool is not None
        async with raw_app.pool.acquire() as conn:
            await conn.execute(raw_app.SCHEMA)
        raw_ids: list[str] = []
        headers = {"content-type": "application/json"}

        async def rpost(i: int) -> None:
            status, data = await call(raw_app.app, "POST", "/customers", headers, body(i, "r"))
            assert status == 201, (status, data[:300])
            if len(raw_ids) < 500:
                raw_ids.append(json.loads(data)["id"])

        async def rget(i: int) -> None:
            status, data = await call(
                raw_app.app, "GET", f"/customers/{raw_ids[i % len(raw_ids)]}", {}
            )
            assert status == 200, (status, data[:300])

        await timed_loop(200)(rpost)
        await timed_loop(200)(rget)
        results["raw_post_us"] = statistics.median(await run(rpost))
        results["raw_post_cpu_us"] = cpu_per_request[-1]
        results["raw_get_us"] = statistics.median(await run(rget))
        results["raw_get_cpu_us"] = cpu_per_request[-1]
    return results


def one(args: argparse.Namespace) -> None:
    import uvloop

    from app.db.migrations import upgrade

    async def prepare() -> None:
        await recreate_db(PG, KEHU_DB)
        await recreate_db(PG, RAW_DB)

    asyncio.run(prepare())
    try:
        upgrade(f"{PG}/{KEHU_DB}")
        results = uvloop.run(measure(args))
        if results:
            print("RESULT " + json.dumps(results), flush=True)
    finally:

        async def cleanup() -> None:
            await drop_db(PG, KEHU_DB)
            await drop_db(PG, RAW_DB)

        asyncio.run(cleanup())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--cprofile", choices=["get", "post"], default=None)
    a = parser.parse_args()
    if not 10 <= a.n <= 100_000:
        parser.error("--n must be 10..100000")
    one(a)
