"""Business time as properties (hypothesis): adding then measuring gives back what was added, adding
is monotonic, and closed hours never count; in zones with and without DST."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.cases import business_time

ZONES = ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


@dataclass(frozen=True)
class Policy:
    time_zone: str
    weekdays: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    business_start_minute: int | None = None
    business_end_minute: int | None = None


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    zone = draw(st.sampled_from(ZONES))
    weekdays = sorted(draw(st.sets(st.integers(1, 7), min_size=1)))
    if draw(st.booleans()):
        return Policy(zone, weekdays)
    start = draw(st.integers(0, 1439))
    end = draw(st.integers(start + 1, 1440))
    return Policy(zone, weekdays, start, end)


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
amounts = st.integers(0, 40 * 24 * 3600)


@settings(max_examples=300, deadline=None)
@given(policies(), instants, amounts)
def test_between_undoes_add(policy: Policy, start: datetime, seconds: int) -> None:
    end = business_time.add(start, seconds, policy)
    assert end >= start
    assert business_time.between(start, end, policy) == seconds


@settings(max_examples=200, deadline=None)
@given(policies(), instants, amounts, amounts)
def test_add_is_monotonic(policy: Policy, start: datetime, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert business_time.add(start, low, policy) <= business_time.add(start, high, policy)
    later = start + timedelta(seconds=b)
    assert business_time.add(start, a, policy) <= business_time.add(later, a, policy)


@settings(max_examples=200, deadline=None)
@given(policies(), instants, instants, instants)
def test_between_adds_up_and_never_exceeds_real_time(
    policy: Policy, a: datetime, b: datetime, c: datetime
) -> None:
    a, b, c = sorted((a, b, c))
    if (c - a).days > 400:
        c = a + timedelta(days=400)
        b = min(b, c)
    whole = business_time.between(a, c, policy)
    assert whole <= (c - a).total_seconds()
    parts = business_time.between(a, b, policy) + business_time.between(b, c, policy)
    # Each part is floored to whole seconds.
    assert whole - 1 <= parts <= whole


def _open_at(policy: Policy, instant: datetime) -> bool:
    """Whether the policy's calendar is open at ``instant``, read on the local wall clock."""
    local = instant.astimezone(ZoneInfo(policy.time_zone))
    if local.isoweekday() not in policy.weekdays:
        return False
    if policy.business_start_minute is None or policy.business_end_minute is None:
        return True
    minute = local.hour * 60 + local.minute
    return policy.business_start_minute <= minute < policy.business_end_minute


@settings(max_examples=500, deadline=None)
@given(policies(), instants)
def test_closed_hours_never_count_and_open_ones_do(policy: Policy, instant: datetime) -> None:
    zone = ZoneInfo(policy.time_zone)
    # Away from an offset change the wall clock alone decides (a boundary inside the skipped
    # hour of a DST change reads with the offset before it).
    if (instant - timedelta(hours=3)).astimezone(zone).utcoffset() != (
        instant + timedelta(hours=3)
    ).astimezone(zone).utcoffset():
        return
    instant = instant.replace(second=0, microsecond=0)
    counted = business_time.between(instant, instant + timedelta(seconds=1), policy)
    assert counted == (1 if _open_at(policy, instant) else 0)


def test_a_dst_day_around_the_clock_is_as_long_as_it_really_is() -> None:
    berlin = Policy("Europe/Berlin")
    start = datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin"))
    end = datetime(2026, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert business_time.between(start, end, berlin) == 23 * 3600
    hours = Policy("Europe/Berlin", [7], 0, 1440)
    assert business_time.between(start, end, hours) == 23 * 3600


def test_validity_of_zones() -> None:
    assert business_time.is_valid_zone("Asia/Shanghai")
    for bad in (
        "",
        "Mars/Olympus",
        "../etc/passwd",
        "/etc/localtime",
        "Europe/Berlin\x00",
        "x" * 300,
    ):
        assert not business_time.is_valid_zone(bad), bad
