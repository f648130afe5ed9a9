"""Interactions over GraphQL: the Relay ``Interaction`` node, the ``interactions`` and ``followUps``
connections, and the ``logInteraction`` / ``updateInteraction`` mutations.

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
from app.interactions import repository, service
from app.interactions.loaders import interactions_by_id
from app.interactions.schemas import (
    FollowUpFilter,
    InteractionCreate,
    InteractionFilter,
    InteractionOut,
    InteractionSort,
    InteractionUpdate,
)

TYPE_NAME = "Interaction"


def parse_interaction_id(value: str) -> uuid.UUID:
    return parse_id(TYPE_NAME, value)


async def _load_nodes(info: GraphQLInfo, node_ids: list[str]) -> list[InteractionOut | None]:
    ids = [parse_interaction_id(node_id) for node_id in node_ids]
    return await info.context.loader(interactions_by_id).load_many(ids)


InteractionType: Any = object_type(InteractionOut, name=TYPE_NAME, node=_load_nodes)
InteractionCreateInput: Any = input_type(
    InteractionCreate,
    name="InteractionCreateInput",
    description="The same fields as the REST body.",
)
InteractionUpdateInput: Any = input_type(
    InteractionUpdate,
    name="InteractionUpdateInput",
    description="Only the fields given change; null clears an optional field. `attributes` "
    "merges by key (a null value removes that key).",
)
InteractionFilterInput: Any = input_type(InteractionFilter, name="InteractionFilter")
FollowUpFilterInput: Any = input_type(FollowUpFilter, name="FollowUpFilter")
InteractionSortEnum: Any = graphql_enum(InteractionSort)


@strawberry.type(name="InteractionEdge")
class InteractionEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this one.")
    node: InteractionType


@strawberry.type(name="InteractionConnection")
class InteractionConnection:
    edges: list[InteractionEdge]
    page_info: relay.PageInfo


# ------------------------------------------------------------------------------------------ queries


@strawberry.type
class InteractionQueries:
    @strawberry.field(description="An interaction by its global id or raw UUID; null if not found.")  # type: ignore[untyped-decorator]
    async def interaction(self, info: GraphQLInfo, id: strawberry.ID) -> InteractionType | None:
        interaction_id = parse_interaction_id(id)
        if len(info.operation.selection_set.selections) > 1:
            return await info.context.loader(interactions_by_id).load(interaction_id)
        async with read_connection() as conn:
            return await service.find_interaction(conn, info.context.caller, interaction_id)

    @strawberry.field(description="Interactions, latest first by default (a Relay connection).")  # type: ignore[untyped-decorator]
    async def interactions(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        filter: Annotated[
            InteractionFilterInput | None,
            strawberry.argument(description="Every filter given must hold (as REST's)."),
        ] = None,
        sort: InteractionSortEnum = InteractionSort.occurred_at_desc,
    ) -> InteractionConnection:
        check_page(first, after)
        filters = validated(InteractionFilter, provided(filter) or {}, "filter")
        async with read_connection() as conn:
            page = await service.list_interactions(
                conn,
                info.context.caller,
                filters,
                sort=InteractionSort(sort),
                limit=first,
                cursor=after,
            )
        return await connection(page, after, InteractionEdge, InteractionConnection)

    @strawberry.field(description="Follow-ups (planned by default) by due date, then id.")  # type: ignore[untyped-decorator]
    async def follow_ups(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        filter: Annotated[
            FollowUpFilterInput | None,
            strawberry.argument(description="As `GET /v1/follow-ups`."),
        ] = None,
    ) -> InteractionConnection:
        check_page(first, after)
        filters = validated(FollowUpFilter, provided(filter) or {}, "filter")
        async with read_connection() as conn:
            page = await service.list_follow_ups(
                conn, info.context.caller, filters, limit=first, cursor=after
            )
        return await connection(page, after, InteractionEdge, InteractionConnection)


# ---------------------------------------------------------------------------------------- mutations


@strawberry.type
class LogInteractionPayload:
    interaction: InteractionType
    replayed: bool = strawberry.field(
        description="True when this is the stored result of an earlier call with the same "
        "idempotencyKey."
    )


@strawberry.type
class UpdateInteractionPayload:
    interaction: InteractionType


@strawberry.type
class InteractionMutations:
    @strawberry.mutation(
        description="Log an interaction (as `POST /v1/interactions`): the same source and "
        "externalId again for the same customer returns the stored one."
    )  # type: ignore[untyped-decorator]
    async def log_interaction(
        self,
        info: GraphQLInfo,
        input: InteractionCreateInput,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="Retry-safe key (≤ 255 printable characters, kept 24 h): the same key "
                "and input return the stored result instead of logging again."
            ),
        ] = None,
    ) -> LogInteractionPayload:
        caller = info.context.caller
        arguments = provided(input)
        payload = validated(InteractionCreate, arguments)

        async with unit_of_work() as conn:

            async def log() -> InteractionOut:
                interaction, _ = await service.log_interaction(conn, caller, payload)
                return interaction

            logged, replayed = await run_once(
                conn, caller, idempotency_key, "logInteraction", arguments, InteractionOut, log
            )
        return LogInteractionPayload(interaction=logged, replayed=replayed)

    @strawberry.mutation(
        description="Change the given fields (as `PATCH /v1/interactions/{id}`); "
        "`expectedVersion` is the version it must be at (precondition_failed when stale)."
    )  # type: ignore[untyped-decorator]
    async def update_interaction(
        self,
        info: GraphQLInfo,
        id: strawberry.ID,
        input: InteractionUpdateInput,
        expected_version: int | None = None,
    ) -> UpdateInteractionPayload:
        caller = info.context.caller
        interaction_id = parse_interaction_id(id)
        payload = validated(InteractionUpdate, provided(input))
        async with unit_of_work() as conn:
            interaction = await service.update_interaction(
                conn, caller, interaction_id, payload, expected_version
            )
        return UpdateInteractionPayload(interaction=interaction)


# ------------------------------------------------------------------------------- on the customer


async def _next_customer_page(
    conn: Connection, caller: Caller, customer_id: uuid.UUID, limit: int, cursor: str
) -> Page[InteractionOut]:
    return await service.list_interactions(
        conn,
        caller,
        InteractionFilter(customer_id=customer_id),
        sort=InteractionSort.occurred_at_desc,
        limit=limit,
        cursor=cursor,
    )


_OF_CUSTOMER = OwnedList(
    scope="interactions:read",
    query=lambda: repository.list_query(InteractionFilter(), InteractionSort.occurred_at_desc),
    sort=InteractionSort.occurred_at_desc.value,
    from_row=repository.interaction_from_row,
    next_page=_next_customer_page,
)


CUSTOMER_FIELD = _OF_CUSTOMER.customer_field(
    "interactions",
    InteractionEdge,
    InteractionConnection,
    description="The customer's interactions and follow-ups, newest first (as `GET /v1/interactions?customer_id=`).",
)
