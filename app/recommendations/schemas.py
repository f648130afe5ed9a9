"""The recommendations of a customer as REST and GraphQL answer them, declared once."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from app.core.schemas import OutputModel
from app.recommendations.enums import RecommendationKind

DEFAULT_LIMIT = 10
MAX_LIMIT = 50

_CROSS_SELL: JsonDict = {
    "sku": "CUP-02",
    "name": "Tasting cup",
    "category": "teaware",
    "kind": "cross_sell",
    "score": 3.2,
    "reason": {"because_of": "TEA-01", "confidence": 0.4, "lift": 3.2, "orders_together": 12},
}
_UPSELL: JsonDict = {
    "sku": "TEA-09",
    "name": "Aged oolong",
    "category": "tea",
    "kind": "upsell",
    "score": 0.35,
    "reason": {"category": "tea", "above_price": {"amount": "49.50", "currency": "CNY"}},
}
_POPULAR: JsonDict = {
    "sku": "TEA-01",
    "name": "Oolong",
    "category": "tea",
    "kind": "popular",
    "score": 1.0,
    "reason": {"orders": 240},
}


class RecommendationOut(OutputModel):
    """One recommended item."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CROSS_SELL, _UPSELL, _POPULAR]})

    sku: str = Field(description="The item's sku.")
    name: str | None = Field(description="The name it was last sold under.")
    category: str | None = Field(description="The category it was last sold under.")
    kind: RecommendationKind = Field(
        description="`cross_sell`: bought together with an item the customer bought; `upsell`: "
        "priced above what the customer paid in a category they buy; `popular`: a best seller, "
        "for a customer with no candidates of the kinds asked for."
    )
    score: float = Field(
        description="Higher is better; comparable within a kind only. `cross_sell`: the lift of "
        "the pair (how many times more often the two are bought together than by chance); "
        "`upsell` and `popular`: the item's orders as a share of the best seller's (0 to 1)."
    )
    reason: dict[str, Any] = Field(
        description="Why, by kind. `cross_sell`: `{because_of, confidence, lift, "
        "orders_together}` (the sku the customer bought, the share of its orders that also had "
        "this item, the lift, and their orders together); `upsell`: `{category, above_price}` (a "
        "money value: the highest unit price the customer paid in that category); `popular`: "
        "`{orders}` (orders with the item)."
    )


class RecommendationsOut(OutputModel):
    """What to offer a customer, best first, from the statistics of the last refresh."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "0193a6f0-55c4-7d2e-9a61-3f1c2b7d8e90",
                    "refreshed_at": "2026-12-07T02:15:40Z",
                    "items": [_CROSS_SELL, _UPSELL],
                },
                {
                    "customer_id": "0193a6f0-55c4-7d2e-9a61-3f1c2b7d8e91",
                    "refreshed_at": "2026-12-07T02:15:40Z",
                    "items": [_POPULAR],
                },
            ]
        }
    )

    customer_id: uuid.UUID
    refreshed_at: datetime | None = Field(
        description="When the co-purchase statistics were last computed (the analytics refresh); "
        "null before the first refresh, when there is nothing to recommend yet."
    )
    items: list[RecommendationOut] = Field(
        description="At most `limit` items, none of which the customer has bought. Without "
        "`kind`, cross-sells take the first half of the places and upsells the rest (either "
        "fills the other's places it leaves empty)."
    )
