"""`kehu serve` and the bootstrap admin key: minted only on the embedded database's very first start;
an external database is not touched before serving. `kehu keys create | list | revoke`."""

import asyncio
import json
import signal
import stat
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
from typer.testing import CliRunner

from app import cli
from app.api import deps
from app.core.auth import SCOPES, display_prefix
from app.core.config import get_settings
from tests.fixtures.cli import run_kehu
from tests.fixtures.factories import KeyFactory, bearer


async def _key_rows(url: str) -> list[tuple[str, bool]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT name, revoked_at IS NOT NULL AS revoked FROM api_keys")
    finally:
        await conn.close()
    return [(r["name"], r["revoked"]) for r in rows]


def _serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> tuple[str, list[Any]]:
    """Run `kehu serve` up to the point where uvicorn would start; returns its output."""
    served: list[Any] = []
    monkeypatch.setattr(cli, "_run_uvicorn", lambda *args: served.append(args))
    # Run from a worker thread here, where signal handlers cannot be installed.
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    monkeypatch.setenv("KEHU_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.cli, ["serve"], catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output, served


async def test_serve_with_an_external_database_does_not_touch_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    # Nothing listens on port 1: any connection attempt before serving would fail the command.
    output, served = await asyncio.to_thread(
        _serve, monkeypatch, tmp_path, KEHU_DATABASE_URL="postgresql://kehu@127.0.0.1:1/kehu"
    )
    assert len(served) == 1
    assert "kehu keys create --scope admin" in output
    assert "kehu_" not in output.replace("kehu keys", "")
    # And against a reachable database with no key at all, still no key is minted.
    output, _ = await asyncio.to_thread(
        _serve, monkeypatch, tmp_path, KEHU_DATABASE_URL=database_url
    )
    assert "kehu_" not in output.replace("kehu keys", "")
    assert await _key_rows(database_url) == []
    assert not (tmp_path / "bootstrap-key").exists()


async def test_embedded_first_start_mints_once_and_never_after_revocation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    from app.db import embedded

    monkeypatch.delenv("KEHU_DATABASE_URL", raising=False)
    monkeypatch.setattr(cli, "_database_url", lambda settings, start_embedded: (database_url, True))
    monkeypatch.setattr(cli, "_migrate", lambda url: None)
    monkeypatch.setattr(embedded, "stop", lambda: None)

    output, served = await asyncio.to_thread(_serve, monkeypatch, tmp_path)
    assert len(served) == 1
    key_file = tmp_path / "bootstrap-key"
    secret = key_file.read_text().strip()
    assert secret.startswith("kehu_")
    assert secret in output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert await _key_rows(database_url) == [("bootstrap-admin", False)]

    key_file.unlink()
    output, _ = await asyncio.to_thread(_serve, monkeypatch, tmp_path)
    assert "kehu_" not in output.replace("kehu keys", "")
    # Every key revoked: the table is not empty, so no new admin key appears out of thin air.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE api_keys SET revoked_at = now()")
    finally:
        await conn.close()
    output, _ = await asyncio.to_thread(_serve, monkeypatch, tmp_path)
    assert "kehu_" not in output.replace("kehu keys", "")
    assert await _key_rows(database_url) == [("bootstrap-admin", True)]
    assert not key_file.exists()


async def _keys(database_url: str, *args: str) -> Any:
    result = await run_kehu("keys", *args, env={"KEHU_DATABASE_URL": database_url})
    return result


async def test_keys_list_shows_prefixes_never_secrets_and_revoked_keys_only_with_all(
    database_url: str, make_key: KeyFactory
) -> None:
    shop = await make_key("customers:read", "orders:read", name="shop-frontend")
    retired = await make_key("events:read", name="retired-sync")
    assert (await _keys(database_url, "revoke", display_prefix(retired))).exit_code == 0

    listed = await _keys(database_url, "list")
    assert listed.exit_code == 0, listed.output
    assert display_prefix(shop) in listed.stdout
    assert "customers:read,orders:read" in listed.stdout
    assert "shop-frontend" in listed.stdout
    assert shop not in listed.stdout
    assert "retired-sync" not in listed.stdout

    every = await _keys(database_url, "list", "--all")
    assert every.exit_code == 0, every.output
    retired_line = next(line for line in every.stdout.splitlines() if "retired-sync" in line)
    assert display_prefix(retired) in retired_line
    assert " revoked " in retired_line
    assert retired not in every.stdout

    as_json = await _keys(database_url, "list", "--all", "--json")
    assert as_json.exit_code == 0, as_json.output
    rows = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert set(rows) == {"shop-frontend", "retired-sync"}
    assert rows["shop-frontend"]["prefix"] == display_prefix(shop)
    assert rows["shop-frontend"]["revoked_at"] is None
    assert rows["retired-sync"]["revoked_at"] is not None
    assert shop not in as_json.stdout
    assert "key" not in rows["shop-frontend"]


async def test_a_key_revoked_from_the_command_line_gets_401(
    database_url: str, make_key: KeyFactory, anon: Any
) -> None:
    secret = await make_key("customers:read", name="leaked")
    assert (await anon.get("/v1/customers", headers=bearer(secret))).status_code == 200

    revoked = await _keys(database_url, "revoke", display_prefix(secret))
    assert revoked.exit_code == 0, revoked.output
    assert display_prefix(secret) in revoked.stdout
    # The app just resolved the key and keeps it for a few seconds; another process, as the API
    # would be, has no such entry once they pass.
    deps.caller_cache.clear()
    response = await anon.get("/v1/customers", headers=bearer(secret))
    assert response.status_code == 401

    again = await _keys(database_url, "revoke", display_prefix(secret))
    assert again.exit_code == 1
    assert again.stdout == ""
    assert "already revoked" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


async def test_revoke_by_id_unknown_keys_and_the_last_admin_key(
    database_url: str, make_key: KeyFactory
) -> None:
    await make_key("admin", name="only-admin")
    await make_key("events:read", name="feed")
    rows = {
        row["name"]: row for row in json.loads((await _keys(database_url, "list", "--json")).stdout)
    }

    by_id = await _keys(database_url, "revoke", rows["feed"]["id"])
    assert by_id.exit_code == 0, by_id.output
    assert await _key_rows(database_url) == [("only-admin", False), ("feed", True)]

    for unknown in ("kehu_nothin", "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"):
        result = await _keys(database_url, "revoke", unknown)
        assert result.exit_code == 1
        assert result.stderr == f"No API key has the id or prefix {unknown!r}.\n"

    last_admin = await _keys(database_url, "revoke", rows["only-admin"]["prefix"])
    assert last_admin.exit_code == 1
    assert "last active admin key" in last_admin.stderr
    assert await _key_rows(database_url) == [("only-admin", False), ("feed", True)]


async def test_create_with_an_unknown_scope_is_one_line_listing_the_valid_ones(
    database_url: str,
) -> None:
    result = await _keys(database_url, "create", "--scope", "nonsense", "--scope", "admin")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "nonsense" in lines[0]
    assert all(scope in lines[0] for scope in SCOPES)
    assert "validation error" not in lines[0].lower()
    assert await _key_rows(database_url) == []

    created = await _keys(database_url, "create", "--scope", "admin", "--name", "ops")
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("kehu_")
    assert await _key_rows(database_url) == [("ops", False)]
