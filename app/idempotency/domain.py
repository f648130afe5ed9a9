"""Idempotency-Key's store in the domain registry (app/domains.py): a table and a purge job; the
REST pipeline and GraphQL use its service directly."""

from app.domains import Domain
from app.idempotency import models, tasks

DOMAIN = Domain(
    name="idempotency",
    models=models,
    jobs=tasks.JOBS,
    schedules=tasks.SCHEDULES,
)
