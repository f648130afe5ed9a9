"""Customers over GraphQL: the Relay ``Customer`` node, the ``customers`` connection and mutations.

Types and inputs are generated from the pydantic schemas (``api/graphql/pydantic_types``); every
resolver calls the same service functions as REST and returns the service's ``CustomerOut`` (PII
already redacted by ``service.view``). Queries take their own read connection (or a DataLoader,
which does); each mutation opens its own ``unit_of_work()``.
"""

import uuid
from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.idempotency import run_once
from app.api.graphql.ids import global_id, parse_id
from app.api.graphql.inputs import validated
from app.api.graphql.pagination import check_page, connection
from app.api.graphql.pydantic_types import graphql_enum, input_type, object_type, provided
from app.core.pagination import DEFAULT_LIMIT
from app.customers import service
from app.customers.loaders import customers_by_id
from app.customers.schemas import (
    CustomerCreate,
    CustomerOut,
    CustomerSort,
    CustomerUpdate,
)
from app.customers.search import CustomerQuery
from app.db import read_connection, unit_of_work

TYPE_NAME = "Customer"


def parse_customer_id(value: str) -> uuid.UUID:
    return parse_id(TYPE_NAME, value)


async def _load_nodes(info: GraphQLInfo, node_ids: list[str]) -> list[CustomerOut | None]:
    ids = [parse_customer_id(node_id) for node_id in node_ids]
    return await info.context.loader(customers_by_id).load_many(ids)


CustomerType: Any = object_type(CustomerOut, name=TYPE_NAME, node=_load_nodes)
CustomerCreateInput: Any = input_type(
    CustomerCreate, name="CustomerCreateInput", description="The same fields as the REST body."
)
CustomerUpdateInput: Any = input_type(
    CustomerUpdate,
    name="CustomerUpdateInput",
    description="Only the fields given change; null clears a field. `attributes` merges by key "
    "(a null value removes that key); `consent` entries replace the same (channel, purpose).",
)
CustomerFilterInput: Any = input_type(CustomerQuery, name="CustomerFilter")
CustomerSortEnum: Any = graphql_enum(CustomerSort)


@strawberry.type(name="CustomerEdge")
class CustomerEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this customer.")
    node: CustomerType


@strawberry.type(name="CustomerConnection")
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: relay.PageInfo


# ------------------------------------------------------------------------------------------ queries


@strawberry.type
class CustomerQueries:
    @strawberry.field(description="A customer by its global id or raw UUID; null if not found.")  # type: ignore[untyped-decorator]
    async def customer(self, info: GraphQLInfo, id: strawberry.ID) -> CustomerType | None:
        customer_id = parse_customer_id(id)
        if len(info.operation.selection_set.selections) > 1:
            # Several root fields (aliases): their ids are fetched together, in one query.
            return await info.context.loader(customers_by_id).load(customer_id)
        # The common single lookup: one query, without a DataLoader's batch task.
        caller = info.context.caller
        async with read_connection() as conn:
            found = await service.find_customer(conn, caller, customer_id)
        return None if found is None else service.view(found, caller)

    @strawberry.field(description="Customers, newest first by default (a Relay connection).")  # type: ignore[untyped-decorator]
    async def customers(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        filter: Annotated[
            CustomerFilterInput | None,
            strawberry.argument(
                description="Every filter given must hold (as REST's); `rule` takes a rule of "
                "the rule language as JSON (as POST /v1/customers/search)."
            ),
        ] = None,
        sort: CustomerSortEnum = CustomerSort.created_at_desc,
    ) -> CustomerConnection:
        check_page(first, after)
        filters = validated(CustomerQuery, provided(filter) or {}, "filter")
        caller = info.context.caller
        async with read_connection() as conn:
            page = await service.list_customers(
                conn, caller, filters, sort=CustomerSort(sort), limit=first, cursor=after
            )
        return await connection(
            page, after, CustomerEdge, CustomerConnection, lambda c: service.view(c, caller)
        )


# ---------------------------------------------------------------------------------------- mutations


@strawberry.type
class CreateCustomerPayload:
    customer: CustomerType
    replayed: bool = strawberry.field(
        description="True when this is the stored result of an earlier call with the same "
        "idempotencyKey."
    )


@strawberry.type
class UpdateCustomerPayload:
    customer: CustomerType


@strawberry.type
class DeleteCustomerPayload:
    deleted_id: strawberry.ID = strawberry.field(description="The global id of the customer.")
    customer_id: uuid.UUID


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(description="Create a customer (as `POST /v1/customers`).")  # type: ignore[untyped-decorator]
    async def create_customer(
        self,
        info: GraphQLInfo,
        input: CustomerCreateInput,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="Retry-safe key (≤ 255 printable characters, kept 24 h): the same key "
                "and input return the stored result instead of creating again."
            ),
        ] = None,
    ) -> CreateCustomerPayload:
        caller = info.context.caller
        arguments = provided(input)
        payload = validated(CustomerCreate, arguments)

        async with unit_of_work() as conn:

            async def create() -> CustomerOut:
                return service.view(await service.create_customer(conn, caller, payload), caller)

            created, replayed = await run_once(
                conn, caller, idempotency_key, "createCustomer", arguments, CustomerOut, create
            )
        return CreateCustomerPayload(customer=created, replayed=replayed)

    @strawberry.mutation(
        description="Change the given fields (as `PATCH /v1/customers/{id}`); `ifMatch` is the "
        "expected version (precondition_failed when stale)."
    )  # type: ignore[untyped-decorator]
    async def update_customer(
        self,
        info: GraphQLInfo,
        id: strawberry.ID,
        input: CustomerUpdateInput,
        if_match: int | None = None,
    ) -> UpdateCustomerPayload:
        caller = info.context.caller
        customer_id = parse_customer_id(id)
        payload = validated(CustomerUpdate, provided(input))
        async with unit_of_work() as conn:
            customer = await service.update_customer(conn, caller, customer_id, payload, if_match)
        return UpdateCustomerPayload(customer=service.view(customer, caller))

    @strawberry.mutation(description="Delete a customer (as `DELETE /v1/customers/{id}`).")  # type: ignore[untyped-decorator]
    async def delete_customer(
        self, info: GraphQLInfo, id: strawberry.ID, if_match: int | None = None
    ) -> DeleteCustomerPayload:
        caller = info.context.caller
        customer_id = parse_customer_id(id)
        async with unit_of_work() as conn:
            await service.delete_customer(conn, caller, customer_id, if_match)
        return DeleteCustomerPayload(
            deleted_id=strawberry.ID(global_id(TYPE_NAME, customer_id)), customer_id=customer_id
        )
