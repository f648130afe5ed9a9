import uuid
from typing import Annotated

from fastapi import Query, Response, status

from app.api.deps import ScopeDep
from app.api.problems import problem_doc
from app.api.responses import json_response, page_response
from app.api.routing import resource_router
from app.core.http import etag
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut
from app.orders import batch, service
from app.orders.schemas import (
    OrderBatch,
    OrderBatchResult,
    OrderCreate,
    OrderFilter,
    OrderOut,
    OrderSort,
    RefundCreate,
    RefundOut,
)

router = resource_router("/orders", "orders")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Record an order",
    description="Stores the order with its lines, adds it to the customer's metrics (unless "
    "`cancelled`) and emits `order.created`, all at once. With lines, `total` must equal "
    "Σ quantity × unit_price − discount + shipping + tax (422 `total_mismatch`, the problem's "
    "`expected_total` says what it should be); every amount must be in the service's currency "
    "(422 `currency_not_supported`); an unknown customer is 422 `customer_not_found`. The same "
    "`source` and `external_id` again for the same customer answers the stored order with "
    "**200** instead of 201 (nothing is recorded twice, no event).",
    response_model=OrderOut,
    responses={
        409: problem_doc(
            "`external_id_conflict`: the source and external_id belong to an order "
            "of another customer."
        ),
    },
)
async def create_order(body: OrderCreate, scope: ScopeDep) -> Response:
    order, created = await service.create_order(scope.conn, scope.caller, body)
    if not created:
        return json_response(order, ETag=etag(order.version))
    return json_response(
        order,
        status.HTTP_201_CREATED,
        ETag=etag(order.version),
        Location=f"/v1/orders/{order.id}",
    )


@router.get("", summary="List orders", response_model=PageOut[OrderOut])
async def list_orders(
    scope: ScopeDep,
    filters: Annotated[OrderFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    sort: Annotated[OrderSort, Query(description="Field, `-` for descending.")] = (
        OrderSort.occurred_at_desc
    ),
) -> Response:
    page = await service.list_orders(
        scope.conn, scope.caller, filters, sort=sort, limit=limit, cursor=cursor
    )
    return page_response(page)


@router.post(
    "/batch",
    summary="Record up to 1,000 orders",
    description="One transaction; one result per item, in request order: `created`, "
    "`existing` (its source and external_id were recorded before, or earlier in this batch, for "
    "the same customer) or `error` (the item is reported and skipped, the others are written; "
    "the same checks and codes as `POST /v1/orders`).",
    response_model=OrderBatchResult,
)
async def create_orders_batch(body: OrderBatch, scope: ScopeDep) -> Response:
    result = await batch.record_batch(scope.conn, scope.caller, body, items_plain=scope.body_plain)
    return json_response(result)


@router.get("/{order_id}", summary="Get an order", response_model=OrderOut)
async def get_order(order_id: uuid.UUID, scope: ScopeDep) -> Response:
    order = await service.get_order(scope.conn, scope.caller, order_id)
    return json_response(order, ETag=etag(order.version))


@router.post(
    "/{order_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    summary="Refund an order",
    description="Gives money back, by `amount` or by `items` (lines and units), never more than "
    "what is left of the total: 409 `refund_exceeds_remaining` (the problem's `remaining` says "
    "how much is left; per line, `errors[]` names the lines without enough units left), 422 "
    "`line_not_found` for a line the order does not have, 409 `order_cancelled` for a "
    "cancelled order. Updates the order (`refunded`, `refund_state`, the lines' "
    "`refunded_quantity`, `version`) and the customer's metrics, and emits `order.refunded`. "
    "The same `external_id` again with the same body answers the stored refund with **200** "
    "(another body: 409 `external_id_conflict`).",
    response_model=RefundOut,
    responses={
        409: problem_doc(
            "`refund_exceeds_remaining`, `order_cancelled`, `nothing_to_refund` (the lines are "
            "worth 0) or `external_id_conflict`."
        )
    },
)
async def refund_order(order_id: uuid.UUID, body: RefundCreate, scope: ScopeDep) -> Response:
    refund, created = await service.refund_order(scope.conn, scope.caller, order_id, body)
    location = f"/v1/orders/{order_id}/refunds/{refund.id}"
    if not created:
        return json_response(refund, Location=location)
    return json_response(refund, status.HTTP_201_CREATED, Location=location)


@router.get(
    "/{order_id}/refunds",
    summary="List an order's refunds",
    description="Oldest first.",
    response_model=PageOut[RefundOut],
)
async def list_order_refunds(
    order_id: uuid.UUID,
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    page = await service.list_refunds(
        scope.conn, scope.caller, order_id, limit=limit, cursor=cursor
    )
    return page_response(page)


@router.get(
    "/{order_id}/refunds/{refund_id}", summary="Get a refund of an order", response_model=RefundOut
)
async def get_order_refund(order_id: uuid.UUID, refund_id: uuid.UUID, scope: ScopeDep) -> Response:
    refund = await service.get_refund(scope.conn, scope.caller, order_id, refund_id)
    return json_response(refund)
