"""The event log's jobs: purge events past their retention."""

from app.events import service
from app.worker.queue import JobHandler, purge_job

JOBS: dict[str, JobHandler] = {
    "events.purge_old": purge_job(service.purge_expired, "events_purged")
}
# Daily (UTC); events are kept service.RETENTION_DAYS days.
SCHEDULES: dict[str, str] = {"events.purge_old": "41 3 * * *"}
