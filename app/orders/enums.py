"""The order vocabularies."""

from enum import StrEnum


class OrderChannel(StrEnum):
    WEB = "web"
    APP = "app"
    STORE = "store"
    PHONE = "phone"
    MARKETPLACE = "marketplace"
    SOCIAL = "social"
    WECHAT = "wechat"
    OTHER = "other"


class OrderStatus(StrEnum):
    # Placed, not yet paid; counts in the metrics like a paid one (it is a purchase).
    PENDING = "pending"
    PAID = "paid"
    FULFILLED = "fulfilled"
    # Never counts: no revenue, no order in the metrics, and it cannot be refunded.
    CANCELLED = "cancelled"


class RefundState(StrEnum):
    """How much of an order has been refunded (derived from ``refunded_amount``)."""

    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"
