"""The order's shape, declared once.

``OrderFields`` names what a client sends about an order; ``OrderCreate`` is the create body (REST,
batch items, GraphQL input); ``OrderOut`` is the stored order with its lines, for REST, GraphQL and
the event snapshot alike. Money is ``Money`` (``app/core/schemas.py``): a decimal string and a
currency, never a float. Rules that need more than one field or the settings (the total against
the lines, the currency) are checked by the service, with their own problem codes.
"""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from app.core import clock
from app.core.schemas import InputModel, Money, OutputModel, field_error, no_nul
from app.customers.schemas import Attributes, ExternalId
from app.interactions.schemas import FUTURE_TOLERANCE, FilterText, Source, Text500, Time
from app.orders.enums import OrderChannel, OrderStatus, RefundState

# Lines per order, and orders per batch.
MAX_ITEMS = 500
MAX_BATCH = 1000
MAX_QUANTITY = 1_000_000
ZERO = Decimal("0.00")
# What Numeric(14, 2) holds: every stored amount (a subtotal too) stays below it.
MONEY_LIMIT = Decimal("1000000000000")

Sku = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"\S"),
    AfterValidator(no_nul),
]
ItemName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=r"\S"),
    AfterValidator(no_nul),
]
Category = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"\S"),
    AfterValidator(no_nul),
]

# Examples for the OpenAPI document (every one is validated by its model in the tests).
_ID = "01938b10-2c3d-7e4f-8a5b-6c7d8e9f0a1b"
_CUSTOMER_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
_REFUND_ID = "01938b22-4d5e-7f60-8a1b-2c3d4e5f6a7b"


def _money(amount: str) -> JsonDict:
    return {"amount": amount, "currency": "CNY"}


_ITEM: JsonDict = {
    "sku": "TEA-01",
    "name": "Oolong 100 g",
    "category": "tea",
    "quantity": 2,
    "unit_price": _money("49.50"),
}
_CREATE: JsonDict = {
    "customer_id": _CUSTOMER_ID,
    "source": "shop",
    "external_id": "A-1001",
    "status": "paid",
    "channel": "web",
    "occurred_at": "2026-11-20T10:00:00Z",
    "items": [_ITEM],
    "discount": _money("10.00"),
    "shipping": _money("8.00"),
    "tax": _money("0.00"),
    "total": _money("97.00"),
    "attributes": {"coupon": "WINTER10"},
}
_IMPORT: JsonDict = {
    "customer_id": _CUSTOMER_ID,
    "source": "legacy-erp",
    "external_id": "2019-000412",
    "channel": "store",
    "occurred_at": "2019-03-02T08:15:00Z",
    "total": _money("1280.00"),
}
_ITEM_OUT: JsonDict = {**_ITEM, "line": 1, "refunded_quantity": 0}
_OUT: JsonDict = {
    **_CREATE,
    "id": _ID,
    "items": [_ITEM_OUT],
    "subtotal": _money("99.00"),
    "refunded": _money("0.00"),
    "refund_state": "none",
    "version": 1,
    "created_at": "2026-11-20T10:00:02Z",
    "updated_at": "2026-11-20T10:00:02Z",
}


class OrderItemFields(BaseModel):
    """One line of an order."""

    sku: Sku = Field(description="Your product code, 1 to 100 characters.")
    name: ItemName | None = Field(default=None, description="At most 300 characters.")
    category: Category | None = Field(
        default=None, description="At most 100 characters (upsell candidates come by category)."
    )
    quantity: int = Field(ge=1, le=MAX_QUANTITY, description="1 to 1,000,000.")
    unit_price: Money = Field(description="The price of one unit.")


class OrderItem(OrderItemFields):
    """A line as sent."""

    # Not an InputModel: the order's own hostile-JSON walk has covered its lines already.
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [_ITEM]}
    )


class OrderItemOut(OrderItemFields, OutputModel):
    """A line as stored."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ITEM_OUT]})

    line: int = Field(description="1-based position in the order as sent.")
    name: str | None
    category: str | None
    refunded_quantity: int = Field(description="Units of this line refunded so far.")


class OrderFields(BaseModel):
    """What a client sends about an order (see the module docstring)."""

    status: OrderStatus | None = Field(
        default=None,
        description="`paid` (the default), `pending`, `fulfilled` or `cancelled`. A cancelled "
        "order is stored (and its event recorded) but never counts in the customer's metrics "
        "and cannot be refunded.",
    )
    channel: OrderChannel | None = Field(default=None, description="Where it was bought.")
    occurred_at: Time | None = Field(
        default=None,
        description="When it was bought (default: now); may be long past (history imports), "
        "not more than 5 minutes in the future.",
    )
    discount: Money | None = Field(default=None, description="Default 0.")
    shipping: Money | None = Field(default=None, description="Default 0.")
    tax: Money | None = Field(default=None, description="Default 0.")
    total: Money | None = Field(
        default=None,
        description="What the customer paid. With lines it must equal Σ quantity × unit_price "
        "− discount + shipping + tax (else 422 `total_mismatch`).",
    )
    attributes: Attributes | None = Field(
        default=None,
        description="Custom fields: keys `^[a-z][a-z0-9_]{0,63}$`, values scalars or lists "
        "(the limits of a customer's attributes).",
    )


class OrderCreate(OrderFields, InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE, _IMPORT]})

    customer_id: uuid.UUID = Field(description="The customer (must exist).")
    status: OrderStatus = Field(
        default=OrderStatus.PAID,
        description="`paid` (the default), `pending`, `fulfilled` or `cancelled` (stored, "
        "never counted in metrics, not refundable).",
    )
    channel: OrderChannel = Field(default=OrderChannel.OTHER, description="Where it was bought.")
    items: list[OrderItem] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="Up to 500 lines (default: none)."
    )
    total: Money = Field(
        description="What the customer paid. With lines it must equal Σ quantity × unit_price "
        "− discount + shipping + tax (else 422 `total_mismatch`); without lines the subtotal is "
        "derived from it."
    )
    source: Source | None = Field(
        default=None, description="Your system sending it (e.g. `shop`); at most 100."
    )
    external_id: ExternalId | None = Field(
        default=None,
        description="Your id of it; needs `source`. The same (source, external_id) again is "
        "the same order: answered with the stored one (200), never recorded twice.",
    )

    @model_validator(mode="after")
    def _rules(self) -> "OrderCreate":
        if self.external_id is not None and self.source is None:
            raise field_error("source", "external_id needs source")
        if self.occurred_at is not None and self.occurred_at > clock.now() + FUTURE_TOLERANCE:
            raise field_error(
                "occurred_at",
                "must not be more than 5 minutes in the future",
                self.occurred_at.isoformat(),
            )
        return self

    def money_fields(self) -> list[tuple[str, Money]]:
        """Every amount of the body, with where it is (for the currency check)."""
        found = [
            (name, value)
            for name in ("discount", "shipping", "tax", "total")
            if (value := getattr(self, name)) is not None
        ]
        found.extend(
            (f"items.{n}.unit_price", item.unit_price) for n, item in enumerate(self.items)
        )
        return found


class OrderOut(OrderFields, OutputModel):
    """An order as stored, with its lines."""

    model_config = ConfigDict(json_schema_extra={"examples": [_OUT]})

    id: uuid.UUID
    customer_id: uuid.UUID
    source: str | None
    external_id: str | None
    status: OrderStatus
    channel: OrderChannel
    occurred_at: datetime = Field(description="When it was bought.")
    items: list[OrderItemOut] = Field(description="The lines, in the order sent.")
    subtotal: Money = Field(
        description="Σ quantity × unit_price of the lines; for an order sent without lines, "
        "total + discount − shipping − tax."
    )
    discount: Money
    shipping: Money
    tax: Money
    total: Money = Field(description="subtotal − discount + shipping + tax: what was paid.")
    refunded: Money = Field(description="The sum of its refunds; never more than `total`.")
    refund_state: RefundState = Field(
        description="`none`, `partial` or `full` (refunded equals total)."
    )
    attributes: dict[str, Any] = Field(default_factory=dict, description="Custom fields.")
    version: int = Field(description="Increases on every change (a refund); the ETag's base.")
    created_at: datetime
    updated_at: datetime


def refund_state(total: Decimal, refunded: Decimal) -> RefundState:
    if refunded <= 0:
        return RefundState.NONE
    return RefundState.FULL if refunded >= total else RefundState.PARTIAL


class OrderSort(StrEnum):
    """A sort order: the field, `-` first for descending."""

    occurred_at = "occurred_at"
    occurred_at_desc = "-occurred_at"
    created_at = "created_at"
    created_at_desc = "-created_at"


class OrderFilter(BaseModel):
    """Which orders a list returns: every filter is optional, and all given must hold."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    customer_id: uuid.UUID | None = None
    status: OrderStatus | None = None
    channel: OrderChannel | None = None
    source: FilterText | None = None
    external_id: FilterText | None = None
    sku: FilterText | None = Field(default=None, description="Only orders with a line of it.")
    occurred_after: Time | None = Field(
        default=None, description="Only those with occurred_at at or after this time."
    )
    occurred_before: Time | None = Field(
        default=None, description="Only those with occurred_at before this time."
    )


# ----------------------------------------------------------------------------------------- refunds


class RefundLine(BaseModel):
    """Units of one line given back."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"line": 1, "quantity": 1}]}
    )

    line: int = Field(ge=1, le=MAX_ITEMS, description="The line's `line` number.")
    quantity: int = Field(ge=1, le=MAX_QUANTITY, description="Units of it refunded.")


_REFUND_BY_AMOUNT: JsonDict = {
    "amount": _money("20.00"),
    "reason": "Late delivery",
    "external_id": "R-77",
}
_REFUND_BY_LINES: JsonDict = {
    "items": [{"line": 1, "quantity": 1}],
    "reason": "Returned one pack",
    "occurred_at": "2026-11-25T09:00:00Z",
}
_REFUND_OUT: JsonDict = {
    "id": _REFUND_ID,
    "order_id": _ID,
    "customer_id": _CUSTOMER_ID,
    "amount": _money("44.50"),
    "items": [{"line": 1, "quantity": 1}],
    "reason": "Returned one pack",
    "external_id": None,
    "occurred_at": "2026-11-25T09:00:00Z",
    "created_at": "2026-11-25T09:00:03Z",
}


class RefundCreate(InputModel):
    """Money given back on an order: an `amount`, or `items` (lines and units) whose value is the
    amount."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REFUND_BY_AMOUNT, _REFUND_BY_LINES]})

    amount: Money | None = Field(
        default=None,
        description="The amount given back (more than 0, at most what is left of the total); "
        "or send `items`.",
    )
    items: list[RefundLine] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ITEMS,
        description="Lines given back, each line at most once. Worth Σ quantity × unit_price, "
        "less the order's discount in proportion (rounded to the cent), at most what is left of "
        "the total.",
    )
    reason: Text500 | None = Field(default=None, description="At most 500 characters.")
    external_id: ExternalId | None = Field(
        default=None,
        description="Your id of the refund, unique per order: the same again with the same "
        "amount or items answers the stored refund (200).",
    )
    occurred_at: Time | None = Field(default=None, description="When it was given (default: now).")

    @model_validator(mode="after")
    def _rules(self) -> "RefundCreate":
        if (self.amount is None) == (self.items is None):
            raise field_error("amount", "send either amount or items, not both")
        if self.amount is not None and self.amount.value <= 0:
            raise field_error("amount.amount", "must be more than 0")
        if self.items is not None:
            seen: set[int] = set()
            for n, line in enumerate(self.items):
                if line.line in seen:
                    raise field_error(("items", n, "line"), "each line at most once")
                seen.add(line.line)
        if self.occurred_at is not None and self.occurred_at > clock.now() + FUTURE_TOLERANCE:
            raise field_error("occurred_at", "must not be more than 5 minutes in the future")
        return self


class RefundOut(OutputModel):
    """A refund as stored."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REFUND_OUT]})

    id: uuid.UUID
    order_id: uuid.UUID
    customer_id: uuid.UUID
    amount: Money
    items: list[RefundLine] | None = Field(description="The lines given back, if by lines.")
    reason: str | None
    external_id: str | None
    occurred_at: datetime
    created_at: datetime


# ------------------------------------------------------------------------------------------- batch


class OrderBatch(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        _CREATE,
                        {"customer_id": _CUSTOMER_ID, "total": {"amount": "-1"}},
                    ]
                }
            ]
        }
    )

    checked_later = frozenset({"items"})  # each item is validated, and reported, on its own

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Up to 1,000 orders, each a `POST /v1/orders` body.",
    )


_CREATED_ITEM: JsonDict = {"index": 0, "status": "created", "id": _ID, "error": None}
_FAILED_ITEM: JsonDict = {
    "index": 1,
    "status": "error",
    "id": None,
    "error": {
        "type": "urn:kehu:problem:validation_failed",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "The item is not valid; see errors[].",
        "code": "validation_failed",
        "errors": [
            {"field": "total.amount", "message": "String should match pattern"},
            {"field": "total.currency", "message": "Field required"},
        ],
    },
}


class OrderBatchItemResult(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CREATED_ITEM, _FAILED_ITEM]})

    index: int
    status: Literal["created", "existing", "error"] = Field(
        description="`created`, `existing` (its source and external_id were recorded before for "
        "this customer: nothing written) or `error`."
    )
    id: uuid.UUID | None = None
    error: dict[str, Any] | None = Field(
        default=None, description="A problem object for this item when status is `error`."
    )


class OrderBatchResult(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [_CREATED_ITEM, _FAILED_ITEM],
                    "created": 1,
                    "existing": 0,
                    "errors": 1,
                }
            ]
        }
    )

    results: list[OrderBatchItemResult]
    created: int
    existing: int
    errors: int
