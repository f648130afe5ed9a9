"""The process-wide engine, and the only two ways to get a session.

``unit_of_work()`` is the only place that commits. ``read_session()`` never writes: GraphQL resolvers and
DataLoaders each take their own, because one AsyncSession must not be used by concurrent tasks.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.errors import ServiceUnavailable

_engine: AsyncEngine | None = None
_sessions: async_sessionmaker[AsyncSession] | None = None
_read_sessions: async_sessionmaker[AsyncSession] | None = None


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


def create_engine(url: str, *, pool_size: int = 10, statement_cache: bool = True) -> AsyncEngine:
    connect_args: dict[str, object] = {"server_settings": {"application_name": "kehu"}}
    if not statement_cache:
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
    # No overflow connections: under bursts, opening and closing extra connections (TLS probe,
    # startup, type introspection, re-preparing statements) cost more than waiting for a pooled one.
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=10,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args=connect_args,
        # Error messages (and so logs and tracebacks) never carry bound values: they are PII.
        hide_parameters=True,
    )


def configure(engine: AsyncEngine) -> None:
    global _engine, _sessions, _read_sessions
    _engine = engine
    _sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    # Reads run in autocommit: no BEGIN/ROLLBACK round trips, each statement sees committed data.
    _read_sessions = async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        autoflush=False,
    )


def get_engine() -> AsyncEngine:
    if _engine is None:
        raise ServiceUnavailable("The database is not configured.")
    return _engine


async def dispose() -> None:
    global _engine, _sessions, _read_sessions
    if _engine is not None:
        await _engine.dispose()
    _engine, _sessions, _read_sessions = None, None, None


def _sessionmaker() -> async_sessionmaker[AsyncSession]:
    if _sessions is None:
        raise ServiceUnavailable("The database is not configured.")
    return _sessions


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """One transaction: commits when the block ends normally, rolls back on any exception."""
    async with _sessionmaker()() as session, session.begin():
        yield session


@asynccontextmanager
async def read_session() -> AsyncIterator[AsyncSession]:
    """A session for reads, in autocommit mode: each statement sees what is committed when it runs.
    It must not write (nothing would roll a write back). Rows loaded through it stay usable after
    the block."""
    if _read_sessions is None:
        raise ServiceUnavailable("The database is not configured.")
    async with _read_sessions() as session:
        yield session
