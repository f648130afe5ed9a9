"""Every job the worker knows: entrypoint name -> handler, merged from each domain's tasks.py through
the domain registry (app/domains.py). Each handler opens its own unit of work."""

import json
from typing import Any

from app.domains import Runner, all_domains
from app.worker.queue import JobHandler

__all__ = ["JOBS", "RUNNERS", "SCHEDULES", "JobHandler", "Runner", "decode_payload"]

JOBS: dict[str, JobHandler] = {name: job for d in all_domains() for name, job in d.jobs.items()}

# Cron expressions for pgqueuer's scheduler (UTC).
SCHEDULES: dict[str, str] = {
    name: cron for d in all_domains() for name, cron in d.schedules.items()
}

# Long-running loops (webhook delivery, ...): each worker builds and runs one of each.
RUNNERS = [make for d in all_domains() for make in d.runners]


def decode_payload(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"value": value}
