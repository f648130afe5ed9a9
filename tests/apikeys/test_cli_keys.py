"""`kehu serve` and the bootstrap admin key: minted only on the embedded database's very first start;
an external database is not touched before serving."""

import asyncio
import signal
import stat
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
from typer.testing import CliRunner

from app import cli
from app.core.config import get_settings


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
    assert "Bootstrap admin API key" not in output
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
    assert "Bootstrap admin API key" not in output
    # Every key revoked: the table is not empty, so no new admin key appears out of thin air.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE api_keys SET revoked_at = now()")
    finally:
        await conn.close()
    output, _ = await asyncio.to_thread(_serve, monkeypatch, tmp_path)
    assert "Bootstrap admin API key" not in output
    assert await _key_rows(database_url) == [("bootstrap-admin", True)]
    assert not key_file.exists()
