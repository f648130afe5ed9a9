"""Job runs counted and timed (``kehu_job_runs_total``, ``kehu_job_duration_seconds``)."""

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
