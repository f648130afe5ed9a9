"""A minimal receiver for Kehu webhooks: Python standard library + `standardwebhooks` (PyPI).

    pip install standardwebhooks
    python receiver.py --port 8080 --secret whsec_...

It verifies every request against the raw body bytes, answers 204 at once, drops duplicates by
`webhook-id`, and does the work (here: prints "<type> <id>") afterwards, on another thread.
Run it behind your HTTPS reverse proxy: Kehu delivers to public `https://` URLs only.

Kept in memory here: the ids already seen and the queue of work. A real receiver stores both
durably (say a table with a unique key on webhook-id) before it answers 2xx.
"""

import argparse
import contextlib
import queue
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 10 * 1024 * 1024


def serve(host: str, port: int, secret: str) -> None:
    webhook = Webhook(secret)
    seen: set[str] = set()
    seen_lock = threading.Lock()
    work: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: Kehu reuses connections

        def do_POST(self) -> None:
            size = self.headers.get("content-length", "")
            if not (re.fullmatch(r"[0-9]{1,9}", size) and int(size) <= MAX_BODY):
                self.answer(413, "a body of at most 10 MiB, with a content-length, is expected")
                return
            body = self.rfile.read(int(size))  # the raw bytes: verify these, not re-encoded JSON
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                event = webhook.verify(body, headers)  # signature and timestamp (±5 min)
            except (WebhookVerificationError, ValueError) as error:
                self.answer(400, f"invalid webhook: {error}")
                return
            msg_id = headers["webhook-id"]  # the event id: the same on every retry and replay
            with seen_lock:
                duplicate = msg_id in seen
                seen.add(msg_id)
            if not duplicate:
                work.put((msg_id, event))
            self.answer(204)  # answer within 15 s; the work is done afterwards

        def answer(self, status: int, text: str = "") -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            if body:
                self.send_header("content-type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

    def worker() -> None:
        while True:
            msg_id, event = work.get()
            # Your work here, e.g. upsert the customer in event["data"].
            print(event["type"], msg_id, flush=True)

    threading.Thread(target=worker, daemon=True).start()
    with ThreadingHTTPServer((host, port), Handler) as server:
        print(f"listening on http://{host}:{port}", file=sys.stderr, flush=True)
        server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Receive Kehu webhooks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--secret", required=True, help="the endpoint's whsec_... secret")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops it
        serve(args.host, args.port, args.secret)


if __name__ == "__main__":
    main()
