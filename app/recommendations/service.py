"""What to offer a customer, from the co-purchase statistics of the last refresh
(docs/recommendations.md): cross-sells, upsells and, for a customer with neither, best sellers.
Shared by REST (one customer) and GraphQL's DataLoader (every customer of a request)."""

import math
import uuid
from collections.abc import Sequence
from typing import Any

from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import NotFound, ValidationFailed
from app.core.schemas import Money
from app.db import Connection
from app.recommendations import repository
from app.recommendations.enums import RecommendationKind, RequestedKind
from app.recommendations.repository import Candidate, CustomerCandidates
from app.recommendations.schemas import MAX_LIMIT, RecommendationOut, RecommendationsOut

READ_SCOPE = "analytics:read"


def check_limit(limit: int, field: str) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}; see errors[].",
            errors=[{"field": field, "message": f"must be between 1 and {MAX_LIMIT}"}],
        )


async def customer_recommendations(
    conn: Connection,
    caller: Caller,
    customer_id: uuid.UUID,
    *,
    kind: RequestedKind | None,
    limit: int,
) -> RecommendationsOut:
    """404 ``customer_not_found`` for a customer that does not exist (or was deleted)."""
    found = await recommendations_of(conn, caller, [customer_id], kind=kind, limit=limit)
    if customer_id not in found:
        raise NotFound(f"No customer {customer_id}.", code="customer_not_found")
    return found[customer_id]


async def recommendations_of(
    conn: Connection,
    caller: Caller,
    customer_ids: Sequence[uuid.UUID],
    *,
    kind: RequestedKind | None,
    limit: int,
) -> dict[uuid.UUID, RecommendationsOut]:
    """The recommendations of each of ``customer_ids`` that exists, in one statement."""
    caller.require(READ_SCOPE)
    check_limit(limit, "query.limit")
    found = await repository.candidates(
        conn,
        list(dict.fromkeys(customer_ids)),
        cross_sell=kind in (None, RequestedKind.CROSS_SELL),
        upsell=kind in (None, RequestedKind.UPSELL),
        limit=limit,
    )
    return {
        customer_id: RecommendationsOut(
            customer_id=customer_id,
            refreshed_at=candidates.refreshed_at,
            items=[_item(c) for c in _chosen(candidates, limit)],
        )
        for customer_id, candidates in found.items()
    }


def _chosen(candidates: CustomerCandidates, limit: int) -> list[Candidate]:
    """Cross-sells take the first half of the places (rounded up), upsells the rest; either
    fills what the other leaves empty. Best sellers only come when there is neither."""
    cross = candidates.by_kind.get(RecommendationKind.CROSS_SELL.value, [])
    upsell = candidates.by_kind.get(RecommendationKind.UPSELL.value, [])
    if not cross and not upsell:
        return candidates.by_kind.get(RecommendationKind.POPULAR.value, [])[:limit]
    # An item is offered once, as a cross-sell when it is one of the first: the statement reads
    # twice the places in upsells, enough after dropping those.
    crossing = {c.sku for c in cross[:limit]}
    upsell = [c for c in upsell if c.sku not in crossing]
    chosen_cross = cross[: max(math.ceil(limit / 2), limit - len(upsell))]
    return chosen_cross + upsell[: limit - len(chosen_cross)]


def _popularity(candidate: Candidate) -> float:
    return candidate.order_count / candidate.best_order_count if candidate.best_order_count else 0.0


def _item(candidate: Candidate) -> RecommendationOut:
    kind = RecommendationKind(candidate.kind)
    reason: dict[str, Any]
    if kind is RecommendationKind.CROSS_SELL:
        assert candidate.lift is not None
        score = candidate.lift
        reason = {
            "because_of": candidate.because_of,
            "confidence": candidate.confidence,
            "lift": candidate.lift,
            "orders_together": candidate.orders_together,
        }
    elif kind is RecommendationKind.UPSELL:
        assert candidate.top_price is not None
        score = _popularity(candidate)
        above = Money.of(candidate.top_price, get_settings().currency)
        reason = {"category": candidate.paid_category, "above_price": above.model_dump()}
    else:
        score = _popularity(candidate)
        reason = {"orders": candidate.order_count}
    return RecommendationOut(
        sku=candidate.sku,
        name=candidate.name,
        category=candidate.category,
        kind=kind,
        score=score,
        reason=reason,
    )
