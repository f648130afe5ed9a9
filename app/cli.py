"""The `kehu` command: serve, worker, migrate, check, keys, openapi, seed."""

import asyncio
import importlib.metadata
import json
import os
import signal
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from app.core.config import Settings, get_settings

if TYPE_CHECKING:
    from pydantic import ValidationError

    from app.apikeys.schemas import ApiKeyOut
    from app.core.auth import Caller
    from app.db import Connection
    from app.diagnostics import CheckReport

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Kehu, a headless CRM service.")
keys_cli = typer.Typer(no_args_is_help=True, help="Manage API keys.")
cli.add_typer(keys_cli, name="keys")

T = TypeVar("T")


def _package_version() -> str:
    try:
        return importlib.metadata.version("kehu")
    except importlib.metadata.PackageNotFoundError:
        return "(unknown: not installed as a package)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"kehu {_package_version()}")
        raise typer.Exit()


@cli.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """Kehu, a headless CRM service."""


def _settings() -> Settings:
    """The settings; an invalid KEHU_ variable is one line naming it and exit 1, not pydantic's
    dump."""
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            variable = f"KEHU_{str(error['loc'][0]).upper()}" if error["loc"] else "settings"
            typer.echo(f"Invalid {variable}: {error['msg']}", err=True)
        raise typer.Exit(1) from None


def _operator() -> "Caller":
    """The caller behind a command: whoever runs it holds the database itself, so it acts as an
    admin (as `kehu seed` does); a fresh id, since it is no stored key."""
    from app.core.auth import Caller
    from app.core.ids import new_id

    return Caller(key_id=new_id(), name="cli", scopes=frozenset({"admin"}))


def _on_database(url: str, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the process's engine configured on ``url``. A database that cannot be used
    (unreachable, not migrated, a bad URL) is one line on stderr and exit 1, not a traceback; so
    is a ``KehuError`` that ``work`` raises (its detail)."""
    from sqlalchemy.exc import DBAPIError

    from app.core.errors import KehuError
    from app.db import engine as db
    from app.diagnostics import error_text, mask_url

    try:
        db.async_url(url)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None

    async def run() -> T:
        db.configure(db.create_engine(url, pool_size=1))
        try:
            return await work()
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except KehuError as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from None
    except (OSError, DBAPIError) as exc:
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == _UNDEFINED_TABLE:
            typer.echo("The database has no Kehu schema yet: run `kehu migrate`.", err=True)
        else:
            typer.echo(f"Cannot use the database {mask_url(url)}: {error_text(exc)}", err=True)
        raise typer.Exit(1) from None


_UNDEFINED_TABLE = "42P01"


def _in_transaction(url: str, work: "Callable[[Connection], Awaitable[T]]") -> T:
    """``_on_database``, with ``work`` run in one unit of work."""
    from app.db import engine as db

    async def run() -> T:
        async with db.unit_of_work() as conn:
            return await work(conn)

    return _on_database(url, run)


def _database_url(settings: Settings, *, start_embedded: bool) -> tuple[str, bool]:
    """The database to use, and whether it is the embedded one."""
    if settings.database_url:
        return settings.database_url, False
    if not start_embedded:
        typer.echo("KEHU_DATABASE_URL is not set; using the embedded database.", err=True)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from app.db import embedded

    return embedded.start(settings.data_dir), True


def _migrate(url: str) -> None:
    from app.db.migrations import upgrade

    upgrade(url)


async def _bootstrap_key(url: str) -> str | None:
    """The embedded database's first admin key, when it has never had any key (revoked ones
    included); None otherwise. Never called for an external database."""
    from app.apikeys import service
    from app.db import engine as db

    db.configure(db.create_engine(url, pool_size=1))
    try:
        async with db.unit_of_work() as conn:
            return await service.create_bootstrap_key(conn)
    finally:
        await db.dispose()


EXTERNAL_KEYS_HINT = (
    "Using KEHU_DATABASE_URL: no API key is created at start. Create one with "
    "`kehu keys create --scope admin` (same KEHU_DATABASE_URL)."
)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (KEHU_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (KEHU_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes (external DB only).")] = 1,
) -> None:
    """Run the API. Without KEHU_DATABASE_URL: embedded PostgreSQL in ./.kehu, migrated, with the
    job worker in-process."""
    settings = get_settings()
    # Checked before the embedded database starts; each server process configures its own export.
    _tracing(settings, export=False)
    url, embedded = _database_url(settings, start_embedded=True)
    if embedded:
        _migrate(url)
    run_worker = settings.run_worker if settings.run_worker is not None else embedded
    settings = settings.model_copy(update={"run_worker": run_worker})
    # Only the embedded database, on its first start, gets a key minted here. An external database
    # is not touched before serving (it may be shared, migrated elsewhere, or not reachable yet).
    secret = asyncio.run(_bootstrap_key(url)) if embedded else None
    bind_host, bind_port = host or settings.host, port or settings.port
    base = f"http://{bind_host}:{bind_port}"
    say = _teller(settings)
    say(
        f"Kehu on {base}  ·  docs {base}/docs  ·  GraphQL {base}/graphql",
        "serving",
        url=base,
        docs=f"{base}/docs",
        graphql=f"{base}/graphql",
    )
    if secret is not None:
        key_file = settings.bootstrap_key_file or settings.data_dir / "bootstrap-key"
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secret + "\n")
        key_file.chmod(0o600)
        say(
            f"Bootstrap admin API key (shown once, also saved to {key_file}):\n  {secret}",
            "bootstrap_admin_key",
            important=True,
            key=secret,
            saved_to=str(key_file),
        )
    elif not embedded:
        say(EXTERNAL_KEYS_HINT, "no_bootstrap_key", hint=EXTERNAL_KEYS_HINT)
    if embedded and workers > 1:
        say("--workers is ignored with the embedded database.", "workers_ignored", important=True)
        workers = 1
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into a normal exit so the
    # `finally` below stops the embedded PostgreSQL instead of the process dying around it.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        _run_uvicorn(settings, url, bind_host, bind_port, workers)
    finally:
        if embedded:
            from app.db import embedded as embedded_server

            embedded_server.stop()


def _tracing(settings: Settings, *, export: bool) -> None:
    """With KEHU_OTEL_ENDPOINT: fail in one line when the ``otel`` extra is missing, else (with
    ``export``) start exporting."""
    if settings.otel_endpoint is None:
        return
    from app.core import tracing

    try:
        if export:
            tracing.configure(settings.otel_endpoint, settings.otel_service_name)
        else:
            tracing.require_sdk()
    except tracing.TracingUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _teller(settings: Settings) -> Callable[..., None]:
    """How `kehu serve` tells the operator something before it serves: a line of text, or with
    KEHU_LOG_JSON (the default) a log line like every other, so its whole output parses as JSON.
    ``important`` lines (the one-time bootstrap key) show whatever KEHU_LOG_LEVEL says."""
    if not settings.log_json:

        def echo(text: str, event: str, *, important: bool = False, **fields: Any) -> None:
            typer.echo(text)

        return echo
    import structlog

    from app.core.logging import configure_logging

    configure_logging(settings.log_level, json=True)
    log = structlog.get_logger("kehu.cli")

    def emit(text: str, event: str, *, important: bool = False, **fields: Any) -> None:
        (log.warning if important else log.info)(event, **fields)

    return emit


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _run_uvicorn(settings: Settings, url: str, host: str, port: int, workers: int) -> None:
    import uvicorn

    from app.core.logging import uvicorn_log_config
    from app.core.metrics import share_between_workers
    from app.main import create_app

    if workers > 1:
        os.environ["KEHU_DATABASE_URL"] = url
        share_between_workers()  # one /metrics for all workers (app/api/metrics.py)
        uvicorn.run(
            "app.main:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=uvicorn_log_config(settings.log_level, settings.log_json),
            access_log=False,
        )
    else:
        uvicorn.run(
            create_app(settings, database_url=url),
            host=host,
            port=port,
            log_config=uvicorn_log_config(settings.log_level, settings.log_json),
            access_log=False,
        )


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop where it exists (as uvicorn runs the API), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


@cli.command()
def worker() -> None:
    """Run a job worker and the event sequencer (needs KEHU_DATABASE_URL; several may run at once)."""
    from app.core.logging import configure_logging
    from app.db import engine as db
    from app.events.sequencer import Sequencer, stop_and_wait
    from app.worker.runner import Worker

    settings = get_settings()
    if not settings.database_url:
        typer.echo(
            "Set KEHU_DATABASE_URL: `kehu serve` runs the worker itself when embedded.", err=True
        )
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_json)
    _tracing(settings, export=True)

    async def run() -> None:
        assert settings.database_url is not None
        db.configure(db.create_engine(settings.database_url, pool_size=4))
        dsn = db.plain_url(settings.database_url)
        sequencer = Sequencer(dsn) if settings.run_sequencer else None
        sequencer_task = asyncio.create_task(sequencer.run()) if sequencer else None
        running = Worker(dsn)
        scrape = None
        if settings.worker_metrics_port is not None:
            from app.worker.metrics import serve_metrics

            scrape = await serve_metrics(settings.host, settings.worker_metrics_port)
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            # Stop taking work, let deliveries in flight finish and be recorded, then exit.
            loop.add_signal_handler(stop_signal, running.stop)
        try:
            await running.run()
        finally:
            if scrape is not None:
                scrape.close()
            if sequencer is not None and sequencer_task is not None:
                await stop_and_wait(sequencer, sequencer_task)
            await db.dispose()

    _run_loop(run())


@cli.command()
def migrate() -> None:
    """Apply database migrations up to the latest."""
    url, _ = _database_url(get_settings(), start_embedded=False)
    _migrate(url)
    typer.echo("Database schema is up to date.")


@keys_cli.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="Repeat for each scope.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
) -> None:
    """Create an API key and print it (once)."""
    from pydantic import ValidationError

    from app.apikeys import service
    from app.apikeys.schemas import ApiKeyCreate

    try:
        payload = ApiKeyCreate(name=name, scopes=scope)
    except ValidationError as exc:
        typer.echo(_invalid_options(exc), err=True)
        raise typer.Exit(2) from None
    url, _ = _database_url(_settings(), start_embedded=False)

    async def create(conn: "Connection") -> str:
        _, secret = await service.create_key(conn, None, payload)
        return secret

    typer.echo(_in_transaction(url, create))


_OPTION_OF_FIELD = {"name": "--name", "scopes": "--scope"}


def _invalid_options(exc: "ValidationError") -> str:
    """A pydantic ValidationError of command-line input as one line naming the options."""
    problems = []
    for error in exc.errors():
        field_name = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{_OPTION_OF_FIELD.get(field_name, field_name)}: {message}")
    return "Invalid " + "; ".join(problems)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    )


@keys_cli.command("list")
def keys_list(
    include_revoked: Annotated[
        bool, typer.Option("--all", help="Include revoked keys (default: active ones only).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON array (the REST API's fields), for scripts.")
    ] = False,
) -> None:
    """List API keys (active ones unless --all), oldest first.

    Id, name, prefix, scopes, when created, and whether revoked. The keys themselves are never
    stored, so never shown; the prefix tells them apart. When a key was last used is not recorded."""
    from app.apikeys import service

    url, _ = _database_url(_settings(), start_embedded=False)
    operator = _operator()

    async def fetch(conn: "Connection") -> "list[ApiKeyOut]":
        return await service.all_keys(conn, operator, include_revoked=include_revoked)

    keys = _in_transaction(url, fetch)
    if as_json:
        typer.echo(json.dumps([key.model_dump(mode="json") for key in keys], indent=2))
        return
    if not keys:
        typer.echo(
            "No API keys." if include_revoked else "No active API keys (--all: revoked too)."
        )
        return
    rows = [
        [
            str(key.id),
            key.name,
            key.prefix,
            ",".join(key.scopes),
            _when(key.created_at),
            f"revoked {_when(key.revoked_at)}" if key.revoked_at else "active",
        ]
        for key in keys
    ]
    typer.echo(_table(["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "STATUS"], rows))


@keys_cli.command("revoke")
def keys_revoke(
    key: Annotated[
        str,
        typer.Argument(help="The key's id, or its prefix as `kehu keys list` shows it (kehu_...)."),
    ],
) -> None:
    """Revoke an API key, by id or prefix.

    Never the last active admin key. API processes that already resolved the key keep accepting
    it for a few seconds (they cache resolved keys briefly)."""
    import uuid

    from app.apikeys import service
    from app.core.errors import Conflict, NotFound

    try:
        key_id: uuid.UUID | None = uuid.UUID(key)
    except ValueError:
        key_id = None
    url, _ = _database_url(_settings(), start_embedded=False)
    operator = _operator()

    async def revoke(conn: "Connection") -> "ApiKeyOut":
        every_key = await service.all_keys(conn, operator, include_revoked=True)
        matches = [k for k in every_key if k.id == key_id or (key_id is None and k.prefix == key)]
        active = [k for k in matches if k.revoked_at is None]
        if not matches:
            raise NotFound(f"No API key has the id or prefix {key!r}.")
        if not active:
            revoked = matches[0]
            raise Conflict(
                f"API key {key!r} ({revoked.name}) was already revoked "
                f"on {_when(revoked.revoked_at)}."
            )
        if len(active) > 1:
            ids = ", ".join(str(k.id) for k in active)
            raise Conflict(
                f"{len(active)} active keys have the prefix {key!r}; revoke by id: {ids}."
            )
        await service.revoke_key(conn, operator, active[0].id)
        return active[0]

    revoked = _in_transaction(url, revoke)
    typer.echo(f"Revoked API key {revoked.id} ({revoked.name}, {revoked.prefix}).")


@cli.command()
def openapi(
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("openapi"),
) -> None:
    """Write openapi/openapi.json and openapi/schema.graphql from the code."""
    from app.contracts import graphql_sdl, openapi_document

    out.mkdir(parents=True, exist_ok=True)
    (out / "openapi.json").write_text(
        json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    )
    (out / "schema.graphql").write_text(graphql_sdl())
    typer.echo(f"Wrote {out / 'openapi.json'} and {out / 'schema.graphql'}.")


@cli.command()
def seed(
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Deprecated and ignored: demo customers are all it adds."),
    ] = False,
    count: Annotated[int, typer.Option(min=1, help="How many demo customers.")] = 1000,
) -> None:
    """Add demo customers (1,000 unless --count).

    Chinese and Western names in several countries, with emails, phones, tags, consent and custom
    attributes, each with its customer.created event. Running it again updates the same customers
    (external ids demo-00000, ...) rather than adding more."""
    from app.seed import seed_demo

    url, _ = _database_url(_settings(), start_embedded=False)

    # seed_demo commits batch by batch, each in its own unit of work.
    typer.echo(f"Seeded {_on_database(url, lambda: seed_demo(count))} demo customers.")


@cli.command()
def check(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """Show the configuration and whether the database is ready.

    Every setting commands run with (secrets masked) and where it came from (env, .env or
    default); then whether the database answers and its schema is at the latest migration. Exits 0
    when ready, 1 when not. It never migrates, and never starts the embedded PostgreSQL."""
    from app.diagnostics import check as run_check

    report = asyncio.run(run_check(_settings()))
    if as_json:
        typer.echo(json.dumps({"version": _package_version(), **report.as_json()}, indent=2))
    else:
        typer.echo(_check_text(report))
    raise typer.Exit(0 if report.ready else 1)


def _setting_text(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, list):
        # As the variable is written: comma-separated.
        return ",".join(str(item) for item in value) or "(empty)"
    return json.dumps(value, ensure_ascii=False).strip('"')


def _check_text(report: "CheckReport") -> str:
    lines = [f"kehu {_package_version()}", "", "Configuration:"]
    lines += _table(
        ["VARIABLE", "VALUE", "SOURCE"],
        [[s.env, _setting_text(s.value), s.source] for s in report.settings],
    ).splitlines()
    database, migrations = report.database, report.migrations
    lines.append("")
    if database.kind == "embedded":
        lines.append(
            f"Database: embedded PostgreSQL (KEHU_DATABASE_URL is unset) in {database.pgdata}"
        )
        lines.append(
            "  initialised: yes"
            if database.initialised
            else "  initialised: no (`kehu serve` creates it on its first start)"
        )
        lines.append(f"  installed: {'yes' if database.installed else 'no'}")
        lines.append(
            "  not started by this check; `kehu serve` applies the migrations when it starts"
        )
    else:
        lines.append(f"Database: {database.url}")
        if database.reachable:
            lines.append(f"  reachable: yes, PostgreSQL {database.server_version}")
        elif database.reachable is False:
            lines.append(f"  reachable: no ({database.error})")
        if migrations.pending is not None:
            if migrations.pending:
                lines.append(f"  migrations: {len(migrations.pending)} pending (`kehu migrate`):")
                lines += [f"    {m.revision}  {m.description}" for m in migrations.pending]
            else:
                lines.append(f"  migrations: at head ({migrations.head})")
    lines.append("")
    lines.append("Ready." if report.ready else "Not ready:")
    lines += [f"  - {problem}" for problem in report.problems]
    return "\n".join(lines)


def main() -> None:
    cli(prog_name="kehu")


if __name__ == "__main__":
    main()
