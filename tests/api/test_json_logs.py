"""Every line `kehu serve` writes while it serves is a log line of one format: a JSON object from
Kehu's own loggers, from uvicorn (in each worker process too) and from any other library, or a
readable console line with KEHU_LOG_JSON=false. The real server runs as a subprocess against this
test's database, its stdout and stderr captured."""

import asyncio
import json
import os
import re
import secrets
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

from app.apikeys import service as apikeys
from app.apikeys.schemas import ApiKeyCreate
from app.db import engine as db
from tests.fixtures.database import ROOT
from tests.fixtures.factories import bearer
from tests.test_cli_serve import _free_port

# Loaded while other processes use both cores, `kehu serve` has taken ~20 s to answer.
START_TIMEOUT = 120.0
WAIT_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0

# `kehu serve`, with a thread that makes libraries log inside the serving process when a line
# arrives on stdin (uvicorn's supervisor takes the USR signals): a third-party logger's warning
# about a database error whose message quotes a value (the marker, argv[1]), and a Python warning.
SERVE_WITH_THIRD_PARTY_LOGS = """
import logging, sys, threading, warnings
from asyncpg.exceptions import UniqueViolationError
from app.cli import cli

marker = sys.argv[1]

def third_party_logs():
    if not sys.stdin.readline():
        return
    error = UniqueViolationError(f"duplicate key value {marker}")
    error.detail = f"Key (email)=({marker}) already exists."
    error.sqlstate = "23505"
    try:
        raise error
    except UniqueViolationError:
        logging.getLogger("thirdparty.client").warning("retrying after %s", "a conflict", exc_info=True)
    warnings.warn("thirdparty: this option is deprecated", UserWarning)

threading.Thread(target=third_party_logs, daemon=True).start()
cli(["serve", *sys.argv[2:]], prog_name="kehu")
"""


@dataclass
class Served:
    """A `kehu serve` subprocess and every line it has written so far (stdout and stderr)."""

    process: asyncio.subprocess.Process
    base: str
    lines: list[str] = field(default_factory=list)

    async def read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.lines.append(line.decode().rstrip("\n"))

    async def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + WAIT_TIMEOUT
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no line with {text!r} in {self.lines}"
            assert self.process.returncode is None, "kehu serve exited"
            await asyncio.sleep(0.1)

    async def ask_for_third_party_logs(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"log\n")
        await self.process.stdin.drain()

    def log_lines(self) -> list[str]:
        return [line for line in self.lines if line.strip()]


@asynccontextmanager
async def kehu_serve(
    database_url: str, tmp_path: Path, log_json: bool, *serve_args: str, marker: str = "-"
) -> AsyncIterator[Served]:
    """`kehu serve` (through SERVE_WITH_THIRD_PARTY_LOGS) on a free port, once it answers; stopped
    with SIGTERM, as an orchestrator stops it, before the output is checked."""
    port = _free_port()
    env = {
        **os.environ,
        "KEHU_DATABASE_URL": database_url,
        "KEHU_HOST": "127.0.0.1",
        "KEHU_PORT": str(port),
        "KEHU_DATA_DIR": str(tmp_path / "data"),
        "KEHU_LOG_JSON": str(log_json).lower(),
        "KEHU_LOG_LEVEL": "info",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE_WITH_THIRD_PARTY_LOGS,
        marker,
        *serve_args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(process, f"http://127.0.0.1:{port}")
    assert process.stdout is not None
    assert process.stderr is not None
    readers = [asyncio.create_task(served.read(s)) for s in (process.stdout, process.stderr)]
    try:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                assert process.returncode is None, f"kehu serve exited: {served.lines}"
                assert time.monotonic() < deadline, f"kehu serve did not answer: {served.lines}"
                try:
                    if (await http.get(f"{served.base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
        await asyncio.wait_for(asyncio.gather(*readers), STOP_TIMEOUT)


async def send_malformed_request(base: str) -> bytes:
    """Bytes that are not HTTP: uvicorn answers 400 and logs "Invalid HTTP request received."."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        return await asyncio.wait_for(reader.read(1000), WAIT_TIMEOUT)
    finally:
        writer.close()


async def make_named_key(name: str) -> tuple[str, str]:
    """A customers:read key in the test database: its id and its secret."""
    async with db.unit_of_work() as conn:
        key, secret = await apikeys.create_key(
            conn, None, ApiKeyCreate(name=name, scopes=["customers:read"])
        )
    return str(key.id), secret


async def test_every_line_is_json_across_worker_processes_and_libraries(
    database_url: str, tmp_path: Path
) -> None:
    key_id, secret = await make_named_key("json-logs-reader")
    marker = f"marker-{secrets.token_hex(6)}@example.test"
    unknown_customer = str(uuid.uuid4())
    # Two worker processes: requests are served by those, uvicorn's supervisor only watches them.
    async with kehu_serve(database_url, tmp_path, True, "--workers", "2", marker=marker) as served:
        async with httpx.AsyncClient(base_url=served.base, timeout=WAIT_TIMEOUT) as http:
            unrouted = await http.get("/no/such/route", headers={"X-Request-ID": "log-unrouted"})
            assert unrouted.status_code == 404
            keyed = bearer(secret)
            invalid = await http.get(
                "/v1/customers/not-a-uuid", headers={**keyed, "X-Request-ID": "log-invalid"}
            )
            assert invalid.status_code == 422
            missing = await http.get(
                f"/v1/customers/{unknown_customer}",
                headers={**keyed, "X-Request-ID": "log-missing"},
            )
            assert missing.status_code == 404
            graphql = await http.post(
                "/graphql",
                json={"query": "{ customers(first: 1) { edges { node { id } } } }"},
                headers={**keyed, "X-Request-ID": "log-graphql"},
            )
            assert graphql.status_code == 200, graphql.text
            wrong_key = await http.get(
                "/v1/customers",
                headers={**bearer("kehu_not-a-key"), "X-Request-ID": "log-wrong-key"},
            )
            assert wrong_key.status_code == 401
        answer = await send_malformed_request(served.base)
        assert answer.startswith(b"HTTP/1.1 400"), answer
        await served.wait_for("Invalid HTTP request received.")
        await served.ask_for_third_party_logs()
        await served.wait_for("this option is deprecated")
        for request_id in ("log-unrouted", "log-invalid", "log-missing", "log-graphql"):
            await served.wait_for(request_id)

    assert served.process.returncode == 0, served.lines
    records: list[dict[str, Any]] = []
    for line in served.log_lines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not JSON: {line!r}") from None
        assert isinstance(record, dict), line
        assert {"timestamp", "level", "logger", "event"} <= record.keys(), line
        records.append(record)
    output = "\n".join(served.lines)
    assert marker not in output
    assert secret not in output

    access = {r["request_id"]: r for r in records if r["logger"] == "kehu.access"}
    assert access["log-unrouted"] | {"duration_ms": 0} == {
        "event": "request",
        "method": "GET",
        "path": "/no/such/route",
        "route": None,
        "status": 404,
        "duration_ms": 0,
        "api_key_id": None,
        "api_key_name": None,
        "problem_code": "not_found",
        "request_id": "log-unrouted",
        "level": "info",
        "logger": "kehu.access",
        "timestamp": access["log-unrouted"]["timestamp"],
        "trace_id": access["log-unrouted"]["trace_id"],
    }
    assert re.fullmatch(r"[0-9a-f]{32}", access["log-unrouted"]["trace_id"])
    expected = {
        "log-invalid": ("/v1/customers/{customer_id}", 422, "validation_failed"),
        "log-missing": ("/v1/customers/{customer_id}", 404, "customer_not_found"),
        "log-graphql": ("/graphql", 200, None),
    }
    for request_id, (route, status, code) in expected.items():
        logged = access[request_id]
        assert (logged["route"], logged["status"], logged["problem_code"]) == (route, status, code)
        assert (logged["api_key_id"], logged["api_key_name"]) == (key_id, "json-logs-reader")
    assert access["log-missing"]["path"] == f"/v1/customers/{unknown_customer}"
    rejected = access["log-wrong-key"]
    assert (rejected["api_key_id"], rejected["problem_code"]) == (None, "invalid_api_key")

    uvicorn_warnings = [r for r in records if r["logger"] == "uvicorn.error"]
    assert [(r["level"], r["event"]) for r in uvicorn_warnings] == [
        ("warning", "Invalid HTTP request received.")
    ]
    (third_party,) = [r for r in records if r["logger"] == "thirdparty.client"]
    assert (third_party["level"], third_party["event"]) == ("warning", "retrying after a conflict")
    exception = third_party["exception"]
    assert exception["type"] == "asyncpg.exceptions.UniqueViolationError"
    assert exception["message"] == "[SQLSTATE 23505; database message withheld from logs]"
    assert exception["traceback"].startswith("Traceback (most recent call last):")
    assert exception["traceback"].endswith(exception["message"])
    (python_warning,) = [r for r in records if r["logger"] == "py.warnings"]
    assert "UserWarning: thirdparty: this option is deprecated" in python_warning["event"]


async def test_log_json_false_gives_readable_console_lines(
    database_url: str, tmp_path: Path
) -> None:
    async with kehu_serve(database_url, tmp_path, False) as served:
        async with httpx.AsyncClient(base_url=served.base, timeout=WAIT_TIMEOUT) as http:
            unrouted = await http.get("/no/such/route", headers={"X-Request-ID": "console-404"})
            assert unrouted.status_code == 404
        await send_malformed_request(served.base)
        await served.wait_for("Invalid HTTP request received.")
        await served.wait_for("console-404")

    assert served.process.returncode == 0, served.lines
    lines = served.log_lines()
    for line in lines:
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            continue
        assert not isinstance(parsed, dict), f"a JSON line with KEHU_LOG_JSON=false: {line}"
    (uvicorn_line,) = [line for line in lines if "Invalid HTTP request received." in line]
    assert "[warning  ] Invalid HTTP request received. [uvicorn.error]" in uvicorn_line
    (access_line,) = [line for line in lines if "request_id=console-404" in line]
    assert "[kehu.access]" in access_line
    for pair in ("route=None", "status=404", "problem_code=not_found", "path=/no/such/route"):
        assert pair in access_line.split(), (pair, access_line)
