"""Kehu with optional in-process patches, to measure what a proposed optimization would gain
without editing app/. Used by `bench/run.py --kehu-patches a,b,c`; never by production code.

    KEHU_DATABASE_URL=... BENCH_PATCHES=async_deps,no_overflow uv run python bench/kehu_variant.py PORT

Patches (each mirrors a change proposed in docs/benchmarks.md):
  async_deps     app/api/deps.py current_caller/current_session as `async def` (no threadpool hop)
  no_overflow    app/db/engine.py create_engine(max_overflow=0): no connect/close churn under load
  autocommit     app/db/engine.py read_session on an AUTOCOMMIT connection (no BEGIN/ROLLBACK)
  no_metrics     no prometheus-fastapi-instrumentator middleware
  fixed_window   app/api/ratelimit.py FixedWindowRateLimiter instead of MovingWindowRateLimiter
  no_access_log  RequestContextMiddleware._log does nothing (it formats a log event per request)
  raw_read       app/customers/repository.py get() as one prepared asyncpg fetchrow on the session's
                 connection (no ORM statement, cache key, identity map or row processing)
"""

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PATCHES = {p for p in os.environ.get("BENCH_PATCHES", "").split(",") if p}


def apply() -> None:
    from app.api import deps  # imports no routers, so patching here precedes route creation

    if "async_deps" in PATCHES:

        async def current_caller(request, _=None):  # type: ignore[no-untyped-def]
            return request.state.caller

        async def current_session(request):  # type: ignore[no-untyped-def]
            return request.state.session

        deps.current_caller.__code__ = current_caller.__code__
        deps.current_session.__code__ = current_session.__code__

    from app.db import engine

    if "no_overflow" in PATCHES:
        original = engine.create_async_engine

        def create_async_engine(url, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["max_overflow"] = 0
            return original(url, **kwargs)

        engine.create_async_engine = create_async_engine  # type: ignore[assignment]

    if "autocommit" in PATCHES:
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

        cache: dict[int, async_sessionmaker[AsyncSession]] = {}

        @asynccontextmanager
        async def read_session() -> AsyncIterator[AsyncSession]:
            eng = engine.get_engine()
            maker = cache.get(id(eng))
            if maker is None:
                maker = async_sessionmaker(
                    eng.execution_options(isolation_level="AUTOCOMMIT"),
                    expire_on_commit=False,
                    autoflush=False,
                )
                cache.clear()
                cache[id(eng)] = maker
            async with maker() as session:
                yield session

        engine.read_session = read_session  # type: ignore[assignment]
        import app.db

        app.db.read_session = read_session  # type: ignore[assignment]
        deps.read_session = read_session  # type: ignore[assignment]

    if "fixed_window" in PATCHES:
        from limits.aio.strategies import FixedWindowRateLimiter

        from app.api import ratelimit

        ratelimit.MovingWindowRateLimiter = FixedWindowRateLimiter  # type: ignore[misc]

    if "no_access_log" in PATCHES:
        from app.api.middleware import RequestContextMiddleware

        RequestContextMiddleware._log = staticmethod(lambda *a, **k: None)  # type: ignore[method-assign]

    if "raw_read" in PATCHES:
        from types import SimpleNamespace

        from app.customers import repository

        sql = "SELECT * FROM customers WHERE id = $1 AND deleted_at IS NULL"

        async def get(session, customer_id):  # type: ignore[no-untyped-def]
            connection = await session.connection()
            raw = await connection.get_raw_connection()
            record = await raw.driver_connection.fetchrow(sql, customer_id)
            return None if record is None else SimpleNamespace(**dict(record))

        repository.get = get  # type: ignore[assignment]

    if "no_metrics" in PATCHES:
        import app.main

        class NoInstrumentator:
            def __init__(self, *a: object, **k: object) -> None:
                pass

            def instrument(self, *a: object, **k: object) -> "NoInstrumentator":
                return self

            def expose(self, *a: object, **k: object) -> "NoInstrumentator":
                return self

        app.main.Instrumentator = NoInstrumentator  # type: ignore[misc,assignment]


def main() -> None:
    apply()
    import uvicorn

    from app.core.config import get_settings
    from app.main import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings, database_url=settings.database_url),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
