"""Idempotency-Key's jobs: forget stored responses past their time to live."""

from app.idempotency import service
from app.worker.queue import JobHandler, purge_job

JOBS: dict[str, JobHandler] = {
    "idempotency.purge_expired": purge_job(service.purge_expired, "idempotency_keys_purged")
}
# Hourly (UTC).
SCHEDULES: dict[str, str] = {"idempotency.purge_expired": "17 * * * *"}
