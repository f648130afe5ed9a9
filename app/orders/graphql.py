"""Orders over GraphQL: the Relay ``Order`` node, the ``orders`` connection, ``Customer.orders``, and
the ``createOrder`` / ``refundOrder`` mutations.

Types and inputs are generated from the pydantic schemas; every resolver calls the same service
functions as REST. Queries take their own read connection (or a DataLoader, which does); each
mutation opens its own ``unit_of_work()``.
"""

import uuid
from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.idempotency import run_once
from app.api.graphql.ids import parse_id
from app.api.graphql.inputs import validated
from app.api.graphql.owned import OwnedList
from app.api.graphql.pagination import check_page, connection
from app.api.graphql.pydantic_types import graphql_enum, input_type, object_type, provided
from app.core.auth import Caller
from app.core.pagination import DEFAULT_LIMIT, Page
from app.db import Connection, read_connection, unit_of_work
from app.orders import repository, service
from app.orders.loaders import orders_by_id
from app.orders.schemas import (
    OrderCreate,
    OrderFilter,
    OrderOut,
    OrderSort,
    RefundCreate,
    RefundOut,
)

TYPE_NAME = "Order"


def parse_order_id(value: str) -> uuid.UUID:
    return parse_id(TYPE_NAME, value)


async def _load_nodes(info: GraphQLInfo, node_ids: list[str]) -> list[OrderOut | None]:
    ids = [parse_order_id(node_id) for node_id in node_ids]
    return await info.context.loader(orders_by_id).load_many(ids)


OrderType: Any = object_type(OrderOut, name=TYPE_NAME, node=_load_nodes)
RefundType: Any = object_type(RefundOut, name="OrderRefund")
OrderCreateInput: Any = input_type(
    OrderCreate, name="OrderCreateInput", description="The same fields as the REST body."
)
RefundCreateInput: Any = input_type(
    RefundCreate,
    name="RefundCreateInput",
    description="`amount` or `items`, as `POST /v1/orders/{id}/refunds`.",
)
OrderFilterInput: Any = input_type(OrderFilter, name="OrderFilter")
OrderSortEnum: Any = graphql_enum(OrderSort)


@strawberry.type(name="OrderEdge")
class OrderEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this one.")
    node: OrderType


@strawberry.type(name="OrderConnection")
class OrderConnection:
    edges: list[OrderEdge]
    page_info: relay.PageInfo


# ------------------------------------------------------------------------------------------ queries


@strawberry.type
class OrderQueries:
    @strawberry.field(description="An order by its global id or raw UUID; null if not found.")  # type: ignore[untyped-decorator]
    async def order(self, info: GraphQLInfo, id: strawberry.ID) -> OrderType | None:
        order_id = parse_order_id(id)
        if len(info.operation.selection_set.selections) > 1:
            return await info.context.loader(orders_by_id).load(order_id)
        async with read_connection() as conn:
            return await service.find_order(conn, info.context.caller, order_id)

    @strawberry.field(description="Orders, latest first by default (a Relay connection).")  # type: ignore[untyped-decorator]
    async def orders(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        filter: Annotated[
            OrderFilterInput | None,
            strawberry.argument(description="Every filter given must hold (as REST's)."),
        ] = None,
        sort: OrderSortEnum = OrderSort.occurred_at_desc,
    ) -> OrderConnection:
        check_page(first, after)
        filters = validated(OrderFilter, provided(filter) or {}, "filter")
        async with read_connection() as conn:
            page = await service.list_orders(
                conn, info.context.caller, filters, sort=OrderSort(sort), limit=first, cursor=after
            )
        return await connection(page, after, OrderEdge, OrderConnection)


# ---------------------------------------------------------------------------------------- mutations


@strawberry.type
class CreateOrderPayload:
    order: OrderType
    replayed: bool = strawberry.field(
        description="True when this is the stored result of an earlier call with the same "
        "idempotencyKey."
    )


@strawberry.type
class RefundOrderPayload:
    refund: RefundType
    order: OrderType = strawberry.field(description="The order as the refund left it.")
    replayed: bool = strawberry.field(
        description="True when this is the stored result of an earlier call with the same "
        "idempotencyKey."
    )


_IDEMPOTENCY_KEY = strawberry.argument(
    description="Retry-safe key (≤ 255 printable characters, kept 24 h): the same key and input "
    "return the stored result instead of writing again."
)


@strawberry.type
class OrderMutations:
    @strawberry.mutation(
        description="Record an order (as `POST /v1/orders`): the same source and externalId "
        "again for the same customer returns the stored one."
    )  # type: ignore[untyped-decorator]
    async def create_order(
        self,
        info: GraphQLInfo,
        input: OrderCreateInput,
        idempotency_key: Annotated[str | None, _IDEMPOTENCY_KEY] = None,
    ) -> CreateOrderPayload:
        caller = info.context.caller
        arguments = provided(input)
        payload = validated(OrderCreate, arguments)

        async with unit_of_work() as conn:

            async def create() -> OrderOut:
                order, _ = await service.create_order(conn, caller, payload)
                return order

            created, replayed = await run_once(
                conn, caller, idempotency_key, "createOrder", arguments, OrderOut, create
            )
        return CreateOrderPayload(order=created, replayed=replayed)

    @strawberry.mutation(
        description="Refund an order (as `POST /v1/orders/{id}/refunds`), by amount or by items, "
        "never more than what is left of its total."
    )  # type: ignore[untyped-decorator]
    async def refund_order(
        self,
        info: GraphQLInfo,
        id: strawberry.ID,
        input: RefundCreateInput,
        idempotency_key: Annotated[str | None, _IDEMPOTENCY_KEY] = None,
    ) -> RefundOrderPayload:
        caller = info.context.caller
        order_id = parse_order_id(id)
        arguments = provided(input)
        payload = validated(RefundCreate, arguments)

        async with unit_of_work() as conn:

            async def refund() -> RefundOut:
                given, _ = await service.refund_order(conn, caller, order_id, payload)
                return given

            refunded, replayed = await run_once(
                conn,
                caller,
                idempotency_key,
                "refundOrder",
                {"id": str(order_id), **arguments},
                RefundOut,
                refund,
            )
        async with read_connection() as conn:
            order = await service.get_order(conn, caller, order_id)
        return RefundOrderPayload(refund=refunded, order=order, replayed=replayed)


# ------------------------------------------------------------------------------- on the customer


async def _next_customer_page(
    conn: Connection, caller: Caller, customer_id: uuid.UUID, limit: int, cursor: str
) -> Page[OrderOut]:
    return await service.list_orders(
        conn,
        caller,
        OrderFilter(customer_id=customer_id),
        sort=OrderSort.occurred_at_desc,
        limit=limit,
        cursor=cursor,
    )


_OF_CUSTOMER = OwnedList(
    scope="orders:read",
    query=lambda: repository.list_query(OrderFilter(), OrderSort.occurred_at_desc),
    sort=OrderSort.occurred_at_desc.value,
    from_row=repository.order_from_row,
    next_page=_next_customer_page,
)


CUSTOMER_FIELD = _OF_CUSTOMER.customer_field(
    "orders",
    OrderEdge,
    OrderConnection,
    description="The customer's orders, newest first (as `GET /v1/orders?customer_id=`).",
)
