"""Business time: how many SLA seconds lie between two instants, and when a number of them runs out.

Pure functions of a calendar (an SLA policy: its IANA ``time_zone``, ISO ``weekdays`` and optional
business hours in minutes after local midnight). The clock runs in the policy's local time with
``zoneinfo``, so a business day is the wall-clock window on that date whatever the UTC offset:
9:00-17:00 in Europe/Berlin is 8 hours on the day summer time starts too, and an around-the-clock
day (no business hours) is as long as that local date really is (23 or 25 hours on a DST change).

``between(s, add(s, n)) == n`` for every ``n >= 0`` (to the second), ``add`` is monotonic in both
arguments, and time outside the windows never counts.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
# Past this a deadline is not a date any calendar can hold (datetime ends at 9999).
_LAST_DAY = date(9998, 12, 31)


class Calendar(Protocol):
    """What business time needs of an SLA policy."""

    @property
    def time_zone(self) -> str: ...

    @property
    def weekdays(self) -> Sequence[int]: ...

    @property
    def business_start_minute(self) -> int | None: ...

    @property
    def business_end_minute(self) -> int | None: ...


class BeyondCalendar(ValueError):
    """The deadline lies past what a date can hold (a calendar with very little business time)."""


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _instant(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """Local wall time ``minute`` after midnight of ``day`` as a UTC instant (a time skipped by a
    DST change reads with the offset before it, so it lands just after the gap)."""
    local = datetime.combine(day, time()) + timedelta(minutes=minute)
    return local.replace(tzinfo=tz).astimezone(UTC)


def _windows(start: datetime, calendar: Calendar) -> Iterator[tuple[datetime, datetime]]:
    """The business windows (UTC, half-open, ascending, never overlapping) that end after
    ``start``, forever."""
    tz = zone(calendar.time_zone)
    weekdays = frozenset(calendar.weekdays)
    if not weekdays:
        raise ValueError("a calendar needs at least one weekday")
    first, last = calendar.business_start_minute, calendar.business_end_minute
    opens, closes = (0, 1440) if first is None or last is None else (first, last)
    # The day before the local date too: a window is never missed at an offset change.
    day = start.astimezone(tz).date() - _DAY
    previous_end = start
    while True:
        if day > _LAST_DAY:
            raise BeyondCalendar("the deadline is beyond the year 9998")
        if day.isoweekday() in weekdays:
            window_start = max(_instant(day, opens, tz), previous_end)
            window_end = _instant(day, closes, tz)
            if window_end > window_start:
                yield window_start, window_end
                previous_end = window_end
        day += _DAY


def add(start: datetime, seconds: int, calendar: Calendar) -> datetime:
    """The instant at which ``seconds`` of business time after ``start`` have passed (``start``
    itself for 0). Raises ``BeyondCalendar`` if that is past the year 9998."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    if seconds == 0:
        return start
    remaining = timedelta(seconds=seconds)
    for window_start, window_end in _windows(start, calendar):
        available = window_end - window_start
        if remaining <= available:
            return window_start + remaining
        remaining -= available
    raise AssertionError("unreachable: the windows never end")  # pragma: no cover


def between(start: datetime, end: datetime, calendar: Calendar) -> int:
    """Whole seconds of business time from ``start`` to ``end`` (0 if ``end`` is not later)."""
    if end <= start:
        return 0
    total = timedelta()
    for window_start, window_end in _windows(start, calendar):
        if window_start >= end:
            break
        total += min(window_end, end) - window_start
    return total // _SECOND


def is_valid_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this system knows."""
    if not name or "\x00" in name or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        zone(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True
