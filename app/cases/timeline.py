"""Cases on the customer timeline (app/timeline): the opening, then each status change."""

from app.cases.models import Case, CaseTransition
from app.timeline.sources import TimelineSource

OPENED = TimelineSource(
    kind="case",
    scope="cases:read",
    table=Case.__table__,
    at="opened_at",
    fields=("category", "priority", "status", "subject", "assignee", "channel"),
    description="A case opened (its current status in `data.status`).",
)

# The first transition of every case (none → open) is the opening, already an entry of its own.
STATUS_CHANGES = TimelineSource(
    kind="case_transition",
    scope="cases:read",
    table=CaseTransition.__table__,
    at="at",
    fields=("case_id", "from_status", "to_status", "reason", "actor"),
    description="A case's status change.",
    where=lambda table: table.c.from_status.is_not(None),
)
