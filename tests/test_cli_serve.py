"""`kehu serve` as an operator runs it: it comes up even when the database is not there yet."""

import os
import signal
import socket
import time
from pathlib import Path

import httpx2 as httpx

from tests.fixtures.processes import start_kehu


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_starts_against_an_unreachable_database_and_reports_not_ready(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/kehu",
        "KEHU_PORT": str(port),
        "KEHU_DATA_DIR": str(tmp_path / "data"),
        "KEHU_LOG_LEVEL": "error",
    }
    process = start_kehu("serve", env=env, capture=True)
    try:
        ready = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert process.poll() is None, "kehu serve exited instead of waiting for the database"
        assert ready is not None, "kehu serve did not answer within 30 s"
        assert ready.status_code == 503
        assert ready.json()["code"] == "database_unavailable"
        customers = httpx.get(
            f"http://127.0.0.1:{port}/v1/customers", headers={"Authorization": "Bearer kehu_x"}
        )
        assert customers.status_code == 503
        assert customers.headers["content-type"] == "application/problem+json"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    # With an external database no key is minted, so nothing secret reaches the container log.
    assert "kehu_" not in output.replace("kehu_x", "")
    assert not (tmp_path / "data" / "bootstrap-key").exists()
