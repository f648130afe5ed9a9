"""The `kehu` command: serve, worker, migrate, keys, openapi, seed."""

import asyncio
import json
import os
import signal
import warnings
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from app.core.config import Settings, get_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Kehu, a headless CRM service.")
keys_cli = typer.Typer(no_args_is_help=True, help="Manage API keys.")
cli.add_typer(keys_cli, name="keys")


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
    typer.echo(f"Kehu on {base}  ·  docs {base}/docs  ·  GraphQL {base}/graphql")
    if secret is not None:
        key_file = settings.bootstrap_key_file or settings.data_dir / "bootstrap-key"
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secret + "\n")
        key_file.chmod(0o600)
        typer.echo(f"Bootstrap admin API key (shown once, also saved to {key_file}):\n  {secret}")
    elif not embedded:
        typer.echo(EXTERNAL_KEYS_HINT)
    if embedded and workers > 1:
        typer.echo("--workers is ignored with the embedded database.", err=True)
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


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _run_uvicorn(settings: Settings, url: str, host: str, port: int, workers: int) -> None:
    import uvicorn

    from app.main import create_app

    if workers > 1:
        os.environ["KEHU_DATABASE_URL"] = url
        uvicorn.run(
            "app.main:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
    else:
        uvicorn.run(
            create_app(settings, database_url=url),
            host=host,
            port=port,
            log_level="warning",
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

    async def run() -> None:
        assert settings.database_url is not None
        db.configure(db.create_engine(settings.database_url, pool_size=4))
        dsn = db.plain_url(settings.database_url)
        sequencer = Sequencer(dsn) if settings.run_sequencer else None
        sequencer_task = asyncio.create_task(sequencer.run()) if sequencer else None
        running = Worker(dsn)
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            # Stop taking work, let deliveries in flight finish and be recorded, then exit.
            loop.add_signal_handler(stop_signal, running.stop)
        try:
            await running.run()
        finally:
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
    from app.db import engine as db

    try:
        payload = ApiKeyCreate(name=name, scopes=scope)
    except ValidationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    url, _ = _database_url(get_settings(), start_embedded=False)

    async def run() -> str:
        db.configure(db.create_engine(url, pool_size=1))
        try:
            async with db.unit_of_work() as conn:
                _, secret = await service.create_key(conn, None, payload)
                return secret
        finally:
            await db.dispose()

    typer.echo(asyncio.run(run()))


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
        bool, typer.Option("--demo", help="Add about 1,000 varied demo customers.")
    ] = False,
    count: Annotated[int, typer.Option(help="How many demo customers.")] = 1000,
) -> None:
    """Fill the database with demo data."""
    if not demo:
        typer.echo("Nothing to do: pass --demo.", err=True)
        raise typer.Exit(2)
    from app.db import engine as db
    from app.seed import seed_demo

    url, _ = _database_url(get_settings(), start_embedded=False)

    async def run() -> int:
        db.configure(db.create_engine(url, pool_size=1))
        try:
            return await seed_demo(count)
        finally:
            await db.dispose()

    typer.echo(f"Seeded {asyncio.run(run())} demo customers.")


def main() -> None:
    cli(prog_name="kehu")


if __name__ == "__main__":
    main()
