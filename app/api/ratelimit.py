"""Per-API-key rate limiting: a sliding-window counter, in process by default, in Redis (through the
`limits` library) when several processes must share the counters."""

import math
import time

from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from app.core import metrics
from app.core.errors import RateLimited


class _LocalWindows:
    """The same sliding-window counter as `limits`, for one process, without its storage layer
    (locks, expiry timers), which cost several per cent of a request: the current and previous fixed
    windows, the previous one weighted by how much of it still overlaps the sliding window."""

    def __init__(self, amount: int, seconds: int) -> None:
        self.amount = amount
        self.seconds = seconds
        self._counts: dict[
            str, tuple[int, int, int]
        ] = {}  # key -> (window index, current, previous)

    def hit(self, key: str, now: float, cost: int = 1) -> tuple[bool, int, float]:
        """Count a hit weighing ``cost``; returns (allowed, remaining, seconds until a slot frees).
        A refused hit counts nothing."""
        return self._hit(key, now, cost, record=True)

    def test(self, key: str, now: float, cost: int = 1) -> tuple[bool, int, float]:
        """As ``hit``, without counting anything."""
        return self._hit(key, now, cost, record=False)

    def _hit(self, key: str, now: float, cost: int, record: bool) -> tuple[bool, int, float]:
        window = int(now // self.seconds)
        index, current, previous = self._counts.get(key, (window, 0, 0))
        if window != index:
            previous = current if window == index + 1 else 0
            current = 0
        elapsed = (now % self.seconds) / self.seconds
        weighted = previous * (1 - elapsed) + current
        allowed = weighted + cost <= self.amount
        if allowed and record:
            current += cost
            weighted += cost
        if record:
            if len(self._counts) > 100_000:
                self._counts.clear()
            self._counts[key] = (window, current, previous)
        return allowed, max(0, self.amount - math.ceil(weighted)), self.seconds * (1 - elapsed)


class KeyRateLimiter:
    """``metric_key``: what ``kehu_rate_limited_total`` labels this limiter's refusals with when
    its keys are not API key ids (client addresses must not become label values); by default the
    key itself, which ``hit`` and ``check`` may override per call."""

    def __init__(
        self,
        rate: str,
        storage_uri: str,
        subject: str = "this API key",
        metric_key: str | None = None,
    ) -> None:
        self.subject = subject
        self.metric_key = metric_key
        self.item = parse(rate)
        self.local: _LocalWindows | None = None
        self.shared: SlidingWindowCounterRateLimiter | None = None
        if storage_uri.startswith("memory://"):
            self.local = _LocalWindows(self.item.amount, self.item.get_expiry())
        else:
            self.shared = SlidingWindowCounterRateLimiter(
                storage_from_string(f"async+{storage_uri}")
            )

    async def _count(self, key: str, cost: int, record: bool) -> tuple[bool, int, float]:
        if self.local is not None:
            windows = self.local.hit if record else self.local.test
            return windows(key, time.time(), cost)
        assert self.shared is not None
        if record:
            allowed = await self.shared.hit(self.item, key, cost=cost)
        else:
            allowed = await self.shared.test(self.item, key, cost=cost)
        stats = await self.shared.get_window_stats(self.item, key)
        return allowed, stats.remaining, stats.reset_time - time.time()

    async def hit(
        self, key: str, cost: int = 1, *, metric_key: str | None = None
    ) -> dict[str, str]:
        """Count one request weighing ``cost`` (a GraphQL operation weighs more than 1); the
        RateLimit headers to send, or RateLimited when over the limit (nothing is counted then)."""
        try:
            return self._headers(*await self._count(key, max(1, cost), record=True))
        except RateLimited:
            self._count_refusal(metric_key or self.metric_key or key)
            raise

    async def check(self, key: str, *, metric_key: str | None = None) -> dict[str, str]:
        """As ``hit`` with cost 1, counting nothing: RateLimited when the budget is used up."""
        try:
            return self._headers(*await self._count(key, 1, record=False))
        except RateLimited:
            self._count_refusal(metric_key or self.metric_key or key)
            raise

    @staticmethod
    def _count_refusal(metric_key: str) -> None:
        metrics.RATE_LIMITED.labels(metric_key).inc()

    def _headers(self, allowed: bool, remaining: int, reset_in: float) -> dict[str, str]:
        reset = max(0, math.ceil(reset_in))
        headers = {
            "RateLimit-Limit": str(self.item.amount),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, reset))
            raise RateLimited(
                f"Rate limit of {self.item.amount} per {self.item.GRANULARITY.name} "
                f"exceeded for {self.subject}.",
                headers=headers,
            )
        return headers
