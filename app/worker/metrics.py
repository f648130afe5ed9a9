"""Job runs counted and timed (``kehu_job_runs_total``, ``kehu_job_duration_seconds``), and the
scrape a `kehu worker` process serves (``KEHU_WORKER_METRICS_PORT``)."""

import asyncio
import time
from typing import Any

from app.core import metrics
from app.worker.queue import JobHandler


def measured(entrypoint: str, handler: JobHandler) -> JobHandler:
    """``handler``, its runs counted by outcome (ok, error) and timed; its exceptions pass
    through unchanged, so pgqueuer still records the failure."""
    runs_ok = metrics.JOB_RUNS.labels(entrypoint, "ok")
    runs_failed = metrics.JOB_RUNS.labels(entrypoint, "error")
    duration = metrics.JOB_SECONDS.labels(entrypoint)

    async def run(payload: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            await handler(payload)
        except BaseException:
            runs_failed.inc()
            raise
        else:
            runs_ok.inc()
        finally:
            duration.observe(time.perf_counter() - started)

    return run


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP/1.0-style exchange: ``GET /metrics`` is the scrape, anything else a 404."""
    from app.api.metrics import render

    try:
        request_line = await asyncio.wait_for(reader.readline(), 5)
        while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
            pass  # headers: none matter
        method, _, rest = request_line.decode("latin-1").partition(" ")
        if method == "GET" and rest.split(" ", 1)[0].split("?", 1)[0] == "/metrics":
            body, content_type = await render()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
        else:
            body, head = b"not found\n", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
        writer.write(
            f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )
        await writer.drain()
    except (TimeoutError, ConnectionError, UnicodeDecodeError):
        pass  # a client that says nothing or goes away gets nothing
    finally:
        writer.close()


async def serve_metrics(host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` (the same scrape as `kehu serve`'s) on ``host:port`` until closed:
    for a `kehu worker`, whose job runs no API process sees."""
    return await asyncio.start_server(_answer, host, port)
