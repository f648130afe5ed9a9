"""The fixed rules of the refresh, in one place (docs/analytics.md shows them as tables): the RFM
segment of each (R, F) cell, the value-tier shares, and the lifecycle settings."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from app.analytics.enums import RfmSegment
from app.core.config import Settings

# The segments by (R, F) score ranges, as docs/analytics.md tables them; together they cover each
# of the 25 cells exactly once (tests/analytics/test_rules.py).
SEGMENT_RULES: list[tuple[range, range, RfmSegment]] = [
    (range(5, 6), range(4, 6), RfmSegment.CHAMPIONS),
    (range(3, 5), range(4, 6), RfmSegment.LOYAL),
    (range(4, 6), range(2, 4), RfmSegment.POTENTIAL_LOYALIST),
    (range(5, 6), range(1, 2), RfmSegment.NEW),
    (range(4, 5), range(1, 2), RfmSegment.PROMISING),
    (range(3, 4), range(3, 4), RfmSegment.NEED_ATTENTION),
    (range(3, 4), range(1, 3), RfmSegment.ABOUT_TO_SLEEP),
    (range(1, 3), range(3, 5), RfmSegment.AT_RISK),
    (range(1, 3), range(5, 6), RfmSegment.CANNOT_LOSE),
    (range(1, 3), range(1, 3), RfmSegment.LOST),
]
SEGMENT_GRID: dict[tuple[int, int], RfmSegment] = {
    (r, f): segment
    for recency, frequency, segment in SEGMENT_RULES
    for r in recency
    for f in frequency
}


def tier_shares(settings: Settings) -> tuple[Decimal, Decimal]:
    """The cumulative revenue shares below which a customer is A, and A or B."""
    a, b, _ = (Decimal(part) for part in settings.value_tier_shares.split(","))
    return a, a + b


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """What "as of D" means: orders before ``cutoff`` (D + 1 day, 00:00 UTC) count, and RFM
    ranks the orders from ``window_start`` on."""

    as_of: date
    cutoff: datetime
    window_start: datetime


def cutoff_of(day: date) -> datetime:
    """The end of ``day`` in UTC: a refresh as of D counts what happened before D + 1 day,
    00:00 UTC (every step of the refresh uses this one definition)."""
    return datetime.combine(day + timedelta(days=1), time.min, UTC)


def cutoffs(as_of: date, settings: Settings) -> Cutoffs:
    cutoff = cutoff_of(as_of)
    return Cutoffs(as_of, cutoff, cutoff - timedelta(days=settings.rfm_window_days))
