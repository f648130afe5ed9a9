"""Per-API-key rate limiting (``limits``: in memory by default, Redis when scaled out)."""

import math
import time

from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from app.core.errors import RateLimited


class KeyRateLimiter:
    def __init__(self, rate: str, storage_uri: str) -> None:
        self.item = parse(rate)
        # Sliding-window counter: O(1) per hit (a moving window keeps every hit of the window).
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(f"async+{storage_uri}"))

    async def hit(self, key: str) -> dict[str, str]:
        """Count one request; the RateLimit headers to send, or RateLimited when over the limit."""
        allowed = await self.limiter.hit(self.item, key)
        stats = await self.limiter.get_window_stats(self.item, key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(self.item.amount),
            "RateLimit-Remaining": str(stats.remaining),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, reset))
            raise RateLimited(
                f"Rate limit of {self.item.amount} per {self.item.GRANULARITY.name} "
                "exceeded for this API key.",
                headers=headers,
            )
        return headers
