"""Feedback answers on the customer timeline (app/timeline), dated by ``submitted_at``."""

from app.feedback.models import Feedback
from app.timeline.sources import TimelineSource

TIMELINE = TimelineSource(
    kind="feedback",
    scope="interactions:read",
    table=Feedback.__table__,
    at="submitted_at",
    fields=("kind", "score", "comment", "category", "channel", "case_id", "interaction_id"),
    description="A survey answer (NPS, CSAT or CES).",
)
