"""Check that GraphiQL renders with no network but this machine, and save a screenshot of it.

    python3 -m uv run python scripts/graphiql_screenshot.py [--output docs/images/graphiql-offline.png]

Serves Kehu on a free port of 127.0.0.1 (GraphiQL on; no database needed: the page and its assets
need none), then runs headless Chromium with every other host cut off (no name resolves, and any
other address goes to a proxy that does not exist) and:

1. the control: strawberry's stock GraphiQL page, which loads its assets from unpkg, served by the
   same server: it must stay at "Loading...", or the cut-off is not working and nothing below
   proves anything;
2. Kehu's page at /graphql: its DOM, after the page has run, must hold GraphiQL's query editor
   (a CodeMirror editor inside `.graphiql-query-editor`, showing the example query) and no
   "Loading…" placeholder;
3. a screenshot of Kehu's page, written to ``--output``.

Exit status: 0 when the editor rendered, 1 when it did not (the reason is printed), 2 when no
Chromium binary is found (`apt-get install -y chromium`). tests/api/test_graphiql.py runs step 2
with the same functions when Chromium is installed.
"""

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse
from strawberry.http.ides import get_graphql_ide_html

from app.core.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CONTROL_PATH = "/graphiql-check/strawberry-cdn-page"
# Classes only GraphiQL's React tree renders (the placeholder div has none of them), and a word of
# the example query that CodeMirror shows in the editor.
EDITOR_CLASSES = frozenset({"graphiql-query-editor", "CodeMirror", "CodeMirror-code"})
EXAMPLE_QUERY_WORD = "customers"
LOADING_TEXTS = ("Loading…", "Loading...")
# Virtual time lets the page's scripts run to completion without waiting in real time.
VIRTUAL_TIME_BUDGET_MS = 15_000
CHROMIUM_TIMEOUT_S = 120


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def offline_flags(profile_dir: Path) -> list[str]:
    """Headless Chromium that reaches 127.0.0.1 and nothing else."""
    return [
        "--headless",
        "--no-sandbox",  # runs as root in containers and CI
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-sync",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={profile_dir}",
        # No host name resolves but 127.0.0.1 ...
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        # ... and an address literal goes to a proxy nobody listens on (Chromium never proxies
        # loopback addresses).
        "--proxy-server=http://127.0.0.1:9",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        "--window-size=1280,800",
    ]


def _run_chromium(chromium: str, args: list[str]) -> str:
    with tempfile.TemporaryDirectory(prefix="kehu-chromium-") as profile:
        finished = subprocess.run(
            [chromium, *offline_flags(Path(profile)), *args],
            capture_output=True,
            text=True,
            timeout=CHROMIUM_TIMEOUT_S,
            check=False,
        )
    if finished.returncode != 0:
        raise RuntimeError(
            f"{chromium} exited with {finished.returncode}: {finished.stderr.strip()[-2000:]}"
        )
    return finished.stdout


def dump_dom(chromium: str, url: str) -> str:
    """The page's DOM after its scripts ran, serialised."""
    return _run_chromium(chromium, ["--dump-dom", url])


def screenshot(chromium: str, url: str, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    _run_chromium(chromium, [f"--screenshot={output.resolve()}", url])
    if not output.is_file() or output.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot to {output}")


class _DomSummary(HTMLParser):
    """The classes used anywhere in a document, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "class" and value:
                self.classes.update(value.split())

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def editor_problem(dom: str) -> str | None:
    """Why ``dom`` does not show GraphiQL's editor; None when it does."""
    summary = _DomSummary()
    summary.feed(dom)
    text = " ".join(summary.text)
    missing = sorted(EDITOR_CLASSES - summary.classes)
    if missing:
        return f"no element with class {', '.join(missing)}: the editor did not render"
    for loading in LOADING_TEXTS:
        if loading in text:
            return f"the page still shows {loading!r}"
    if EXAMPLE_QUERY_WORD not in text:
        return f"the editor does not show the example query ({EXAMPLE_QUERY_WORD!r} missing)"
    return None


def check_app() -> FastAPI:
    """Kehu with GraphiQL on and no database, plus strawberry's stock (CDN) page as the control."""
    settings = Settings(
        database_url=None,
        graphiql=True,
        run_sequencer=False,
        run_worker=False,
        log_level="warning",
        gc_threshold=0,
    )
    app = create_app(settings)

    async def strawberry_cdn_page(request: Request) -> HTMLResponse:
        return HTMLResponse(get_graphql_ide_html("graphiql"))

    app.add_route(CONTROL_PATH, strawberry_cdn_page, methods=["GET"], include_in_schema=False)
    return app


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1, in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def run_check(chromium: str, output: Path | None) -> str | None:
    """The whole check; None when it passed, else why it failed."""
    with serving(check_app()) as base:
        control = editor_problem(dump_dom(chromium, base + CONTROL_PATH))
        if control is None:
            return (
                "strawberry's CDN page rendered too: the network is not cut off, so this check "
                "proves nothing"
            )
        print(f"control (strawberry's CDN page, offline): {control}")
        problem = editor_problem(dump_dom(chromium, base + "/graphql"))
        if problem is not None:
            return problem
        print("Kehu's GraphiQL page, offline: the editor rendered")
        if output is not None:
            screenshot(chromium, base + "/graphql", output)
            print(f"screenshot: {output} ({output.stat().st_size} bytes)")
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "images" / "graphiql-offline.png",
        help="where to write the screenshot (default: docs/images/graphiql-offline.png)",
    )
    parser.add_argument("--no-screenshot", action="store_true", help="only check the DOM")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print(
            f"No Chromium found (looked for {', '.join(CHROMIUM_NAMES)}): "
            "`apt-get install -y chromium`.",
            file=sys.stderr,
        )
        return 2
    try:
        problem = run_check(chromium, None if args.no_screenshot else args.output)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    if problem is not None:
        print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
