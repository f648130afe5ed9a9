"""The event log in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.events import models, tasks
from app.events.endpoints import router

DOMAIN = Domain(
    name="events",
    tag="events",
    description="The event log.",
    router=router,
    models=models,
    jobs=tasks.JOBS,
    schedules=tasks.SCHEDULES,
)
