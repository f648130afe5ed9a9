"""The refresh step that recomputes the item statistics and co-purchase pairs
(``app.recommendations.repository.replace_statistics``; definitions in docs/recommendations.md).
The last step of the analytics refresh; set-based, in one transaction of its own, so readers see
the old statistics until the new ones are complete."""

import time
import uuid
from datetime import date
from typing import Any

from app.analytics.rules import cutoff_of
from app.core import clock
from app.core.config import get_settings
from app.db import unit_of_work
from app.recommendations import repository

# Partners kept per sku (by lift, then confidence, then sku): bounds ``item_pairs`` at
# TOP_PARTNERS x skus rows, and more than any page of recommendations shows.
TOP_PARTNERS = 50


async def refresh(*, as_of: date, refresh_id: uuid.UUID | None) -> dict[str, Any]:
    started = time.perf_counter()
    async with unit_of_work() as conn:
        figures = await repository.replace_statistics(
            conn,
            cutoff=cutoff_of(as_of),
            min_pair_orders=get_settings().recommendations_min_pair_orders,
            top_partners=TOP_PARTNERS,
            refreshed_at=clock.now(),
        )
    # refresh_id is not needed: the orchestrator records these figures under it.
    return {
        "skus": figures.skus,
        "pairs": figures.pairs,
        "orders": figures.orders,
        "seconds": round(time.perf_counter() - started, 3),
    }
