"""The few statements every request of the hottest endpoints runs, compiled once and executed on the
asyncpg connection under the pooled SQLAlchemy connection.

SQLAlchemy's execution path (compiled-cache lookup, execution context, result metadata, the greenlet
hop) costs about 100 µs of CPU per statement here, more than the statement's round trip; see
docs/benchmarks.md. A ``DriverStatement`` skips it and nothing else: it runs on the same pooled
connection, inside the same transaction (begun now if SQLAlchemy has not begun it yet), so pooling,
transactions, commits and rollbacks stay SQLAlchemy's. Everything else is a plain Core statement
(``conn.execute``); this is for statements measured to matter.

A statement is a SQLAlchemy Core statement (compiled once for asyncpg: ``$1`` placeholders) or SQL
text with ``$n`` placeholders and the parameter names in order. JSON parameters are serialised
here, as SQLAlchemy's JSON bind processing would (its asyncpg codec takes JSON text); JSON results
come back decoded by that codec.
"""

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from pydantic_core import to_json
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.types import JSON

from app.core import tracing
from app.db.engine import Connection

# SQLAlchemy's statement log (``echo``), so these statements show there like every other.
_statements_log = logging.getLogger("sqlalchemy.engine.Engine")
_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]


class DriverStatement:
    def __init__(
        self,
        statement: ClauseElement | str,
        names: Sequence[str] = (),
        *,
        json_names: Sequence[str] = (),
        column_keys: Sequence[str] | None = None,
    ) -> None:
        if isinstance(statement, str):
            self.sql, self.names, json_params = statement, tuple(names), set(json_names)
        else:
            compiled: Any = statement.compile(
                dialect=_DIALECT, column_keys=list(column_keys) if column_keys else None
            )
            self.sql = compiled.string
            self.names = tuple(compiled.positiontup or ())
            json_params = {
                name
                for name, bind in compiled.binds.items()
                if isinstance(bind.type, JSON) and name in self.names
            }
        self._json = tuple(name in json_params for name in self.names)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        # pydantic-core's serialiser: the same compact JSON as json.dumps, in a third of the time.
        return [
            to_json(params[name]).decode() if is_json and params[name] is not None else params[name]
            for name, is_json in zip(self.names, self._json, strict=True)
        ]

    async def fetchrow(
        self, conn: Connection, params: Mapping[str, Any], *, only_write: bool = False
    ) -> Any:
        """The first row (an ``asyncpg.Record``: ``record["email"]``, ``dict(record)``) or None.
        Errors are SQLAlchemy's, as ``conn.execute`` raises them (``IntegrityError``, ...).

        ``only_write``: this statement is the only write of its unit of work. When nothing has
        run in the unit yet, it runs without BEGIN and COMMIT (PostgreSQL runs one statement
        atomically, in a transaction of its own), two round trips fewer; whatever the unit runs
        after it runs in a READ ONLY transaction, so a write there fails loudly instead of
        committing apart. After an earlier statement it simply joins the unit's transaction."""
        adapter = await _adapter(conn, only_write=only_write)
        if _statements_log.isEnabledFor(logging.INFO):  # as SQLAlchemy's echo, values hidden
            _statements_log.info("%s\n[driver statement; parameters hidden]", self.sql)
        with tracing.sql_span(self.sql, conn.engine.url.database):
            try:
                return await adapter._connection.fetchrow(self.sql, *self.arguments(params))
            except Exception as error:
                await _raise_as_sqlalchemy(conn, adapter, self.sql, error)

    async def fetch(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row (``asyncpg.Record``s), in ``conn``'s transaction; errors as ``fetchrow``."""
        adapter = await _adapter(conn)
        with tracing.sql_span(self.sql, conn.engine.url.database):
            try:
                return list(await adapter._connection.fetch(self.sql, *self.arguments(params)))
            except Exception as error:
                await _raise_as_sqlalchemy(conn, adapter, self.sql, error)


async def _adapter(conn: Connection, *, only_write: bool = False) -> Any:
    """SQLAlchemy's asyncpg adapter under ``conn``, in ``conn``'s transaction (begun now if it has
    not sent a statement yet: the adapter begins lazily, at the first statement)."""
    sync = conn.sync_connection
    if sync is not None and sync._dbapi_connection is not None:
        # The checked-out connection, without get_raw_connection()'s greenlet hop (~10 µs).
        adapter: Any = sync._dbapi_connection.dbapi_connection
    else:
        adapter = (await conn.get_raw_connection()).dbapi_connection
    if conn.in_transaction() and adapter._transaction is None:
        if only_write and adapter.isolation_level != "autocommit":
            # Runs on its own; the adapter's next lazy BEGIN is READ ONLY, until the connection
            # goes back to the pool (``engine._writable_again``).
            adapter.readonly = True
        else:
            # The adapter's own lazy BEGIN (what its first execute would do); no-op in autocommit.
            await adapter._start_transaction()
    return adapter


async def _raise_as_sqlalchemy(
    conn: Connection, adapter: Any, sql: str, error: Exception
) -> NoReturn:
    """What SQLAlchemy would raise for ``error``: the adapter's DBAPI error wrapped in the
    matching ``sqlalchemy.exc`` class (bound values hidden), the connection invalidated when the
    error means it is gone."""
    try:
        adapter._handle_exception(error)  # raises the DBAPI translation of ``error``
    except adapter.dbapi.Error as dbapi_error:
        dialect: Any = conn.dialect
        if dialect.is_disconnect(dbapi_error, None, None):
            await conn.invalidate(dbapi_error)
        raise DBAPIError.instance(
            sql, None, dbapi_error, adapter.dbapi.Error, hide_parameters=True, dialect=dialect
        ) from error
    raise error
