"""The process-wide engine, and the only two ways to get a connection.

Every repository runs SQLAlchemy Core statements on an ``AsyncConnection`` (no ORM session: its
identity map and unit-of-work bookkeeping cost a third of a single-row request's CPU and buy
nothing for single-table statements; see docs/benchmarks.md). ``unit_of_work()`` is the only place
that commits. ``read_connection()`` never writes: GraphQL resolvers and DataLoaders each take their
own, because one connection must not be used by concurrent tasks.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import Engine, RootTransaction, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# SQLAlchemy's cleanup helper for async context managers (a close that survives cancellation).
from sqlalchemy.ext.asyncio.base import _run_to_completion
from sqlalchemy.util import greenlet_spawn

from app.core.errors import ServiceUnavailable
from app.db.pool import FairAsyncQueuePool

# What every repository function takes: one connection, in a transaction or in autocommit.
Connection = AsyncConnection

_engine: AsyncEngine | None = None
_read_engine: AsyncEngine | None = None


def async_url(url: str) -> str:
    """Accept the usual ``postgresql://`` / ``postgres://`` forms and pin the asyncpg driver."""
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))
    raise ValueError(f"KEHU_DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}")


def plain_url(url: str) -> str:
    """The libpq form of the URL, for asyncpg and pgqueuer connections outside SQLAlchemy."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


# The read pool made with each engine (``create_engine``), by the engine's id.
_read_engines: dict[int, AsyncEngine] = {}


def _new_engine(url: str, pool_size: int, statement_cache: bool, **options: Any) -> AsyncEngine:
    connect_args: dict[str, object] = {"server_settings": {"application_name": "kehu"}}
    if not statement_cache:
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
    # No overflow connections: under bursts, opening and closing extra connections (TLS probe,
    # startup, type introspection, re-preparing statements) cost more than waiting for a pooled one.
    return create_async_engine(
        async_url(url),
        poolclass=FairAsyncQueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args=connect_args,
        # Error messages (and so logs and tracebacks) never carry bound values: they are PII.
        hide_parameters=True,
        **options,
    )


def create_engine(url: str, *, pool_size: int = 10, statement_cache: bool = True) -> AsyncEngine:
    """The engine for writes, with ``pool_size`` connections; ``configure`` also gets the read
    pool made here: ``pool_size`` more connections, in autocommit mode from the start (switching a
    pooled connection's isolation level on every checkout cost ~4 % of a read's CPU)."""
    engine = _new_engine(url, pool_size, statement_cache)
    event.listen(engine.sync_engine.pool, "checkin", _writable_again)
    _read_engines[id(engine)] = _new_engine(
        url, pool_size, statement_cache, isolation_level="AUTOCOMMIT"
    )
    return engine


def _writable_again(dbapi_connection: Any, _record: Any) -> None:
    """A connection's next unit of work starts writable, whatever a ``DriverStatement`` with
    ``only_write`` made of this one (app/db/driver.py)."""
    if dbapi_connection is not None:
        dbapi_connection.readonly = False


def configure(engine: AsyncEngine) -> None:
    global _engine, _read_engine
    _engine = engine
    # Reads run in autocommit: no BEGIN/ROLLBACK round trips, each statement sees committed data.
    _read_engine = _read_engines.pop(id(engine), None) or engine.execution_options(
        isolation_level="AUTOCOMMIT"
    )


def get_engine() -> AsyncEngine:
    if _engine is None:
        raise ServiceUnavailable("The database is not configured.")
    return _engine


def engines() -> list[AsyncEngine]:
    """The write engine and the read engine (one object when they are the same)."""
    found = [e for e in (_engine, _read_engine) if e is not None]
    return list({id(e.sync_engine): e for e in found}.values())


async def dispose() -> None:
    global _engine, _read_engine
    if _read_engine is not None and _read_engine is not _engine:
        await _read_engine.dispose()
    if _engine is not None:
        await _engine.dispose()
    _engine, _read_engine = None, None


def _connect_and_begin(sync_engine: Engine) -> tuple[SyncConnection, RootTransaction]:
    connection = sync_engine.connect()
    try:
        transaction = connection.begin()
        transaction.__enter__()
    except BaseException:
        connection.close()
        raise
    return connection, transaction


def _end_and_close(
    connection: SyncConnection, transaction: RootTransaction, error: BaseException | None
) -> None:
    try:
        transaction.__exit__(type(error) if error else None, error, None)
    finally:
        connection.close()


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncConnection]:
    """One transaction: commits when the block ends normally, rolls back on any exception.

    What ``engine.begin()`` does, in two hops into SQLAlchemy's greenlet instead of four (connect,
    begin, commit, close): ~15 µs of a write request. The end runs to completion even if the
    request is cancelled meanwhile, as SQLAlchemy's own close does."""
    engine = get_engine()
    connection, transaction = await greenlet_spawn(_connect_and_begin, engine.sync_engine)
    try:
        yield AsyncConnection(engine, connection)
    except BaseException as error:
        await _run_to_completion(greenlet_spawn(_end_and_close, connection, transaction, error))
        raise
    await _run_to_completion(greenlet_spawn(_end_and_close, connection, transaction, None))


@asynccontextmanager
async def read_connection() -> AsyncIterator[AsyncConnection]:
    """A connection for reads, in autocommit mode: each statement sees what is committed when it
    runs. It must not write (nothing would roll a write back)."""
    if _read_engine is None:
        raise ServiceUnavailable("The database is not configured.")
    async with _read_engine.connect() as connection:
        yield connection
