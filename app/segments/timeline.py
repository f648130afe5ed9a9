"""Segment stays on the customer timeline (app/timeline), dated by ``entered_at``."""

from sqlalchemy import select

from app.segments.models import Segment, SegmentMembership
from app.timeline.sources import TimelineSource

_stays = SegmentMembership.__table__
_segments = Segment.__table__

_ENTRIES = (
    select(
        _stays.c.customer_id,
        _stays.c.id,
        _stays.c.entered_at,
        _stays.c.exited_at,
        _stays.c.segment_id,
        _segments.c.name.label("segment_name"),
        _stays.c.rule_version,
    )
    .join_from(_stays, _segments, _segments.c.id == _stays.c.segment_id)
    .subquery("segment_entries")
)

_FIELDS = ("segment_id", "segment_name", "rule_version")

ENTERED = TimelineSource(
    kind="segment_entered",
    scope="segments:read",
    table=_ENTRIES,
    at="entered_at",
    fields=_FIELDS,
    description="The customer entered a segment (by its rule, at that rule version, or added by "
    "hand: rule_version null).",
)
EXITED = TimelineSource(
    kind="segment_exited",
    scope="segments:read",
    table=_ENTRIES,
    at="exited_at",
    fields=_FIELDS,
    description="The customer left a segment.",
    where=lambda table: table.c.exited_at.is_not(None),
)
