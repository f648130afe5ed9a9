"""The partner's guide (docs/webhooks.md) and the example receivers it shows.

Each receiver in docs/examples/webhooks runs as a real process on a free port of 127.0.0.1 and gets
requests signed exactly as Kehu signs them (``delivery.payload`` and ``delivery.signed_headers``),
then a real delivery from the delivery engine. The guide must show the example files verbatim
(between ``<!-- BEGIN path -->`` and ``<!-- END path -->``) and state the delivery constants the
code has.

The Node receiver needs node and npm: its pinned packages are installed once into a folder under
the system temp dir named after docs/examples/webhooks/package.json. Without node/npm the Node runs
are skipped, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx2 as httpx
import pytest
from sqlalchemy import text

from app.core import clock
from app.db import read_connection
from app.events.schemas import EVENT_TYPES, EventOut
from app.webhooks import delivery, service
from tests.fixtures.events import wait_stamped
from tests.fixtures.factories import create_customer
from tests.fixtures.tools import file_lock, missing_tool, run_tool

ROOT = Path(__file__).resolve().parent.parent.parent
GUIDE = ROOT / "docs" / "webhooks.md"
EXAMPLES = ROOT / "docs" / "examples" / "webhooks"
SHOWN_IN_GUIDE = ("receiver.py", "receiver.mjs", "package.json")

START_TIMEOUT = 20.0  # until the receiver says it listens
REQUEST_TIMEOUT = 10.0
LINE_TIMEOUT = 10.0  # from a 2xx to the printed line
STOP_TIMEOUT = 5.0
NPM_INSTALL_TIMEOUT = 100.0


# --------------------------------------------------------------------------- running a receiver


@dataclass
class RunningReceiver:
    """An example receiver process: what it printed, and a way to POST to it."""

    process: subprocess.Popen[str]
    port: int
    stdout: queue.Queue[str] = field(default_factory=queue.Queue)
    stderr: queue.Queue[str] = field(default_factory=queue.Queue)
    stderr_seen: list[str] = field(default_factory=list)

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            connection.request("POST", "/kehu/webhooks", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def next_line(self) -> str:
        """The next line the receiver printed on stdout (one per accepted event)."""
        try:
            return self.stdout.get(timeout=LINE_TIMEOUT).rstrip("\n")
        except queue.Empty:
            pytest.fail(f"nothing printed within {LINE_TIMEOUT:g} s; stderr:\n{self.errors()}")

    def errors(self) -> str:
        with contextlib.suppress(queue.Empty):
            while True:
                self.stderr_seen.append(self.stderr.get_nowait())
        return "".join(self.stderr_seen)[-4000:]


def _pump(stream: IO[str], sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running(command: list[str], cwd: Path, port: int) -> Iterator[RunningReceiver]:
    """Run ``command`` until the block ends; ready once it prints "listening on" to stderr."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        # As partners run it: a receiver that does not flush its output itself shows nothing.
        env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "NO_COLOR": "1"},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    receiver = RunningReceiver(process, port)
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, receiver.stdout), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, receiver.stderr), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not any(line.startswith("listening on") for line in receiver.stderr_seen):
            if process.poll() is not None:
                pumps[1].join(STOP_TIMEOUT)
                pytest.fail(f"{command[1]} exited ({process.returncode}):\n{receiver.errors()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{command[1]} not listening after {START_TIMEOUT:g} s")
            with contextlib.suppress(queue.Empty):
                receiver.stderr_seen.append(receiver.stderr.get(timeout=0.1))
        yield receiver
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
        for pump in pumps:
            pump.join(STOP_TIMEOUT)
        process.stdout.close()
        process.stderr.close()


# (port, secret) -> (command, working directory)
Launcher = Callable[[int, str], tuple[list[str], Path]]


def _npm_install(npm: str, cwd: Path) -> None:
    command = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    run_tool(command, cwd=cwd, timeout=NPM_INSTALL_TIMEOUT, what=f"npm install in {cwd}")


def _node_modules(npm: str) -> Path:
    """node_modules with the example's pinned packages, installed once per package.json."""
    package_json = (EXAMPLES / "package.json").read_text()
    key = hashlib.sha256(package_json.encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"kehu-webhooks-example-{key}"
    done = home / ".installed"
    with file_lock(Path(tempfile.gettempdir()) / f"kehu-webhooks-example-{key}.lock"):
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            (home / "package.json").write_text(package_json)
            _npm_install(npm, home)
            done.write_text(package_json)
    return home / "node_modules"


@pytest.fixture(params=["python", "node"])
def launcher(request: pytest.FixtureRequest, tmp_path: Path) -> Launcher:
    """How to start one of the example receivers, as the guide tells partners to."""
    if request.param == "python":

        def python(port: int, secret: str) -> tuple[list[str], Path]:
            script = str(EXAMPLES / "receiver.py")
            return [sys.executable, script, "--port", str(port), "--secret", secret], tmp_path

        return python
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing_tool("node and npm are needed to run the Node example receiver")
    node_modules = _node_modules(npm)
    pinned = json.loads((EXAMPLES / "package.json").read_text())["dependencies"]
    installed = json.loads((node_modules / "standardwebhooks" / "package.json").read_text())
    assert installed["version"] == pinned["standardwebhooks"]
    # Node resolves packages from the script's folder: a copy of the example next to the modules.
    for name in ("receiver.mjs", "package.json"):
        shutil.copyfile(EXAMPLES / name, tmp_path / name)
    (tmp_path / "node_modules").symlink_to(node_modules, target_is_directory=True)

    def run_node(port: int, secret: str) -> tuple[list[str], Path]:
        return [node, "receiver.mjs", "--port", str(port), "--secret", secret], tmp_path

    return run_node


@contextlib.contextmanager
def started(launcher: Launcher, secret: str, port: int | None = None) -> Iterator[RunningReceiver]:
    port = free_port() if port is None else port
    command, cwd = launcher(port, secret)
    with running(command, cwd, port) as receiver:
        yield receiver


# --------------------------------------------------------------------------- what Kehu sends


@dataclass(frozen=True)
class Delivery:
    msg_id: str
    type: str
    body: str  # as Kehu serializes it: compact JSON, non-ASCII as UTF-8

    def headers(self, *secrets: str, age: timedelta = timedelta(0)) -> dict[str, str]:
        return delivery.signed_headers(self.msg_id, clock.now() - age, self.body, secrets)


def kehu_delivery(type: str = "customer.updated") -> Delivery:
    """An event as the delivery engine renders it for an endpoint without pii:read."""
    customer_id = uuid.uuid4()
    event = EventOut(
        id=uuid.uuid4(),
        position=1042,
        type=type,
        occurred_at=clock.now(),
        customer_id=customer_id,
        sequence=2,
        data={
            "id": str(customer_id),
            "first_name": "伟",
            "last_name": "王",
            "email": "wang.wei@example.com",
            "city": "杭州",
            "attributes": {"score": 1.0, "site": "https://shop.example.com/"},
            "version": 2,
        },
        changes={"city": ["上海", "杭州"]},
    )
    body = delivery.payload(event, include_pii=False)
    shown = json.loads(body)
    assert shown["data"]["email"] is None
    assert shown["data"]["redacted_fields"] == ["email"]
    # Raw UTF-8 and a float written "1.0": JSON parsed and serialized again (Python escapes the
    # one, JavaScript writes the other as "1") no longer matches the signature.
    assert '"杭州"' in body
    assert '"score":1.0' in body
    return Delivery(str(event.id), type, body)


def accepted(event: Delivery) -> str:
    """The line an example receiver prints for an event it accepts."""
    return f"{event.type} {event.msg_id}"


# --------------------------------------------------------------------------- the receivers


def test_accepts_a_kehu_delivery_once(launcher: Launcher) -> None:
    secret = service.new_secret()
    first, second = kehu_delivery("customer.created"), kehu_delivery("customer.updated")
    with started(launcher, secret) as receiver:
        assert 200 <= receiver.post(first.body.encode(), first.headers(secret)) < 300
        assert receiver.next_line() == accepted(first)
        # Redelivered (a retry, a replay, a lease that ran out): 2xx, but not processed again.
        assert 200 <= receiver.post(first.body.encode(), first.headers(secret)) < 300
        assert 200 <= receiver.post(second.body.encode(), second.headers(secret)) < 300
        assert receiver.next_line() == accepted(second), "the duplicate was processed"
        assert receiver.stdout.empty()


def test_rejects_forged_and_stale_requests(launcher: Launcher) -> None:
    secret = service.new_secret()
    event, after = kehu_delivery(), kehu_delivery("customer.deleted")
    signed = event.headers(secret)
    tampered = event.body.replace("杭州", "上海").encode()
    assert tampered != event.body.encode()
    cases = {
        "tampered body": (tampered, signed),
        "wrong secret": (event.body.encode(), event.headers(service.new_secret())),
        "timestamp 6 minutes old": (
            event.body.encode(),
            event.headers(secret, age=timedelta(minutes=6)),
        ),
        "no signature": (
            event.body.encode(),
            {k: v for k, v in signed.items() if k != "webhook-signature"},
        ),
    }
    with started(launcher, secret) as receiver:
        for case, (body, headers) in cases.items():
            assert receiver.post(body, headers) == 400, case
        # Nothing of the above was processed: the next line printed is this event's.
        assert 200 <= receiver.post(after.body.encode(), after.headers(secret)) < 300
        assert receiver.next_line() == accepted(after)
        # The rejected event itself, properly signed, is accepted: only the forgeries failed.
        assert 200 <= receiver.post(event.body.encode(), event.headers(secret)) < 300
        assert receiver.next_line() == accepted(event)


def test_accepts_either_signature_during_a_rotation(launcher: Launcher) -> None:
    old, new = service.new_secret(), service.new_secret()
    event = kehu_delivery()
    headers = event.headers(new, old)  # what Kehu sends for 24 h after a rotation
    assert len(headers["webhook-signature"].split(" ")) == 2
    with started(launcher, old) as receiver:  # not switched over yet
        assert 200 <= receiver.post(event.body.encode(), headers) < 300
        assert receiver.next_line() == accepted(event)
    with started(launcher, new) as receiver:  # switched over
        assert 200 <= receiver.post(event.body.encode(), headers) < 300
        assert receiver.next_line() == accepted(event)


@pytest.mark.usefixtures("allow_local_targets")
async def test_receives_a_real_delivery(client: httpx.AsyncClient, launcher: Launcher) -> None:
    port = free_port()
    created = await client.post(
        "/v1/webhooks/endpoints",
        json={"url": f"http://127.0.0.1:{port}/kehu/webhooks", "event_types": ["customer.*"]},
    )
    assert created.status_code == 201, created.text
    with contextlib.ExitStack() as stack:
        receiver = await asyncio.to_thread(
            stack.enter_context, started(launcher, created.json()["secret"], port)
        )
        await create_customer(client)
        await wait_stamped()
        (event,) = (await client.get("/v1/events")).json()["data"]
        async with delivery.new_client(service.target_policy()) as sender:
            assert await delivery.deliver_due(sender) == 1
            line = await asyncio.to_thread(receiver.next_line)
            assert line == f"customer.created {event['id']}"
    async with read_connection() as conn:
        settled = await conn.execute(text("SELECT status, attempts FROM webhook_deliveries"))
        assert [tuple(row) for row in settled] == [("succeeded", 1)]


# --------------------------------------------------------------------------- the guide


_SHOWN = re.compile(
    r"<!-- BEGIN (?P<path>\S+) -->\n```[a-z]*\n(?P<code>.*?)```\n<!-- END (?P=path) -->", re.DOTALL
)


def test_guide_shows_the_tested_examples() -> None:
    shown = {m["path"]: m["code"] for m in _SHOWN.finditer(GUIDE.read_text())}
    expected = [f"docs/examples/webhooks/{name}" for name in SHOWN_IN_GUIDE]
    assert sorted(shown) == sorted(expected)
    for path, code in shown.items():
        assert code == (ROOT / path).read_text(), f"docs/webhooks.md shows an old {path}"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = [(seconds // 3600, "h"), (seconds // 60 % 60, "min"), (seconds % 60, "s")]
    return " ".join(f"{n} {unit}" for n, unit in parts if n) or "0"


def test_guide_states_what_the_code_does() -> None:
    guide = " ".join(GUIDE.read_text().split())  # line breaks as spaces
    schedule = delivery.RETRY_SCHEDULE
    table = [
        f"| {attempt} | {_duration(step)} | {_span(sum(schedule[: attempt - 1], timedelta()))} |"
        for attempt, step in enumerate(schedule, start=2)
    ]
    stated = [
        *table,
        f"about {_span(sum(schedule, timedelta())).rsplit(' ', 2)[0]}",
        ", ".join(_duration(step) for step in schedule),
        f"±{delivery.JITTER * 100:g} %",
        f"{delivery.MAX_ATTEMPTS} attempts",
        f"within {delivery.TIMEOUT_SECONDS:g} s",
        f"up to {_duration(delivery.RETRY_AFTER_CAP)}",
        f"{delivery.DISABLE_AFTER.days} days",
        f"{_duration(service.ROTATION_OVERLAP)}",
        f"`{delivery.USER_AGENT}`",
        "`webhook.endpoint_disabled`",
    ]
    missing = [text for text in stated if text not in guide]
    assert not missing, f"docs/webhooks.md does not say: {missing}"


_DELIVERY_EXAMPLE = re.compile(
    r"<!-- BEGIN delivery example -->\n```http\n(?P<request>.*?)\n```\n<!-- END delivery example -->",
    re.DOTALL,
)
_JSON_BLOCK = re.compile(r"```json\n(?P<json>.*?)```", re.DOTALL)
EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the API reference's example secret


def test_guide_shows_a_delivery_as_kehu_sends_it() -> None:
    guide = GUIDE.read_text()
    shown = _DELIVERY_EXAMPLE.search(guide)
    assert shown is not None, "no delivery example in docs/webhooks.md"
    head, body = shown["request"].split("\n\n", 1)
    request_line, *header_lines = head.split("\n")
    assert request_line == "POST /kehu/webhooks HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in header_lines)
    when = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    assert when == datetime(2025, 11, 25, 9, 31, 13, tzinfo=UTC)  # the time the guide names
    assert EXAMPLE_SECRET in guide  # the secret the guide says it was signed with
    examples = EventOut.model_config.get("json_schema_extra")
    assert isinstance(examples, dict)
    assert isinstance(examples["examples"], list)
    event = EventOut.model_validate(examples["examples"][0])  # the API reference's example event
    sent = delivery.payload(event, include_pii=False)
    signed = delivery.signed_headers(str(event.id), when, sent, [EXAMPLE_SECRET])
    assert body == sent
    assert {name: headers.get(name) for name in signed} == signed
    # The laid-out copy of the envelope is the same event.
    envelopes = [
        block for m in _JSON_BLOCK.finditer(guide) if "occurred_at" in (block := m["json"])
    ]
    assert envelopes
    assert all(json.loads(block) == json.loads(sent) for block in envelopes)


def test_guide_lists_every_event_type() -> None:
    guide = GUIDE.read_text()
    missing = [t for t in EVENT_TYPES if f"`{t}`" not in guide]
    assert not missing, f"docs/webhooks.md does not list: {missing}"


def test_the_node_example_pins_its_library() -> None:
    package = json.loads((EXAMPLES / "package.json").read_text())
    assert package["type"] == "module"
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in package["dependencies"].values())
