"""The recommendation vocabularies."""

from enum import StrEnum


class RecommendationKind(StrEnum):
    """Why an item is recommended: bought together with something the customer bought
    (``cross_sell``), a pricier item in a category they buy (``upsell``), or a best seller for a
    customer with no candidates of either kind (``popular``)."""

    CROSS_SELL = "cross_sell"
    UPSELL = "upsell"
    POPULAR = "popular"


class RequestedKind(StrEnum):
    """The candidates asked for: cross-sells or upsells (both when not given)."""

    CROSS_SELL = "cross_sell"
    UPSELL = "upsell"
