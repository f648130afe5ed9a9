"""Interactions on the customer timeline (app/timeline), dated by ``occurred_at``."""

from app.interactions.models import Interaction
from app.timeline.sources import TimelineSource

TIMELINE = TimelineSource(
    kind="interaction",
    scope="interactions:read",
    table=Interaction.__table__,
    at="occurred_at",
    fields=(
        "channel",
        "direction",
        "kind",
        "status",
        "subject",
        "agent",
        "outcome",
        "due_at",
        "case_id",
    ),
    description="A contact on a channel, or a planned follow-up.",
)
