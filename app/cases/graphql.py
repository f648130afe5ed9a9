"""Cases over GraphQL: the Relay ``Case`` node (with its ``transitions``), the ``cases``
connection, ``slaPolicies``, and the mutations ``openCase``, ``updateCase``, ``transitionCase`` and
``updateSlaPolicy``; on the same service functions as REST. Queries take their own read connection
(or a DataLoader, which does); each mutation opens its own ``unit_of_work()``.
"""

import uuid
from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.extend import type_field
from app.api.graphql.idempotency import run_once
from app.api.graphql.ids import parse_id
from app.api.graphql.inputs import validated
from app.api.graphql.owned import OwnedList
from app.api.graphql.pagination import check_page, connection
from app.api.graphql.pydantic_types import graphql_enum, input_type, object_type, provided
from app.cases import repository, service
from app.cases.enums import CasePriority
from app.cases.loaders import cases_by_id, transitions_by_case
from app.cases.schemas import (
    CaseCreate,
    CaseFilter,
    CaseOut,
    CaseSort,
    CaseTransitionCreate,
    CaseTransitionOut,
    CaseUpdate,
    SlaPolicyOut,
    SlaPolicyUpdate,
)
from app.core.auth import Caller
from app.core.pagination import DEFAULT_LIMIT, Page
from app.db import Connection, read_connection, unit_of_work

TYPE_NAME = "Case"


def parse_case_id(value: str) -> uuid.UUID:
    return parse_id(TYPE_NAME, value)


async def _load_nodes(info: GraphQLInfo, node_ids: list[str]) -> list[CaseOut | None]:
    ids = [parse_case_id(node_id) for node_id in node_ids]
    return await info.context.loader(cases_by_id).load_many(ids)


CaseType: Any = object_type(CaseOut, name=TYPE_NAME, node=_load_nodes)
CaseTransitionType: Any = object_type(CaseTransitionOut, name="CaseTransition")
SlaPolicyType: Any = object_type(SlaPolicyOut, name="SlaPolicy")
CaseCreateInput: Any = input_type(
    CaseCreate, name="CaseCreateInput", description="The same fields as the REST body."
)
CaseUpdateInput: Any = input_type(
    CaseUpdate,
    name="CaseUpdateInput",
    description="Only the fields given change; null clears description, assignee or channel. "
    "`attributes` merges by key. A new priority moves the running deadlines to its policy.",
)
CaseTransitionInput: Any = input_type(
    CaseTransitionCreate,
    name="CaseTransitionInput",
    description="As the REST body of `POST /v1/cases/{id}/transitions`.",
)
SlaPolicyUpdateInput: Any = input_type(
    SlaPolicyUpdate, name="SlaPolicyUpdateInput", description="The whole policy (as REST's PUT)."
)
CaseFilterInput: Any = input_type(CaseFilter, name="CaseFilter")
CaseSortEnum: Any = graphql_enum(CaseSort)
CasePriorityEnum: Any = graphql_enum(CasePriority)


async def case_transitions(root: Any, info: GraphQLInfo) -> list[CaseTransitionType]:
    return await info.context.loader(transitions_by_case).load(root)


# Added to the generated Case node (Domain.graphql_type_fields).
TRANSITIONS_FIELD = type_field(
    "transitions",
    case_transitions,
    description="The case's status history, oldest first; the opening (from null to open) first.",
)


@strawberry.type(name="CaseEdge")
class CaseEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this case.")
    node: CaseType


@strawberry.type(name="CaseConnection")
class CaseConnection:
    edges: list[CaseEdge]
    page_info: relay.PageInfo


# ------------------------------------------------------------------------------------------ queries


@strawberry.type
class CaseQueries:
    @strawberry.field(description="A case by its global id or raw UUID; null if not found.")  # type: ignore[untyped-decorator]
    async def case(self, info: GraphQLInfo, id: strawberry.ID) -> CaseType | None:
        case_id = parse_case_id(id)
        if len(info.operation.selection_set.selections) > 1:
            return await info.context.loader(cases_by_id).load(case_id)
        async with read_connection() as conn:
            return await service.find_case(conn, info.context.caller, case_id)

    @strawberry.field(description="Cases, newest first by default (a Relay connection).")  # type: ignore[untyped-decorator]
    async def cases(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        filter: Annotated[
            CaseFilterInput | None,
            strawberry.argument(description="Every filter given must hold (as REST's)."),
        ] = None,
        sort: CaseSortEnum = CaseSort.opened_at_desc,
    ) -> CaseConnection:
        check_page(first, after)
        filters = validated(CaseFilter, provided(filter) or {}, "filter")
        async with read_connection() as conn:
            page = await service.list_cases(
                conn, info.context.caller, filters, sort=CaseSort(sort), limit=first, cursor=after
            )
        return await connection(page, after, CaseEdge, CaseConnection)

    @strawberry.field(description="The SLA policy of each priority, urgent first.")  # type: ignore[untyped-decorator]
    async def sla_policies(self, info: GraphQLInfo) -> list[SlaPolicyType]:
        async with read_connection() as conn:
            return await service.list_sla_policies(conn, info.context.caller)


# ---------------------------------------------------------------------------------------- mutations


@strawberry.type
class OpenCasePayload:
    case: CaseType
    replayed: bool = strawberry.field(
        description="True when this is the stored result of an earlier call with the same "
        "idempotencyKey."
    )


@strawberry.type
class UpdateCasePayload:
    case: CaseType


@strawberry.type
class TransitionCasePayload:
    case: CaseType


@strawberry.type
class UpdateSlaPolicyPayload:
    sla_policy: SlaPolicyType


@strawberry.type
class CaseMutations:
    @strawberry.mutation(description="Open a case (as `POST /v1/cases`).")  # type: ignore[untyped-decorator]
    async def open_case(
        self,
        info: GraphQLInfo,
        input: CaseCreateInput,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="Retry-safe key (≤ 255 printable characters, kept 24 h): the same key "
                "and input return the stored result instead of opening again."
            ),
        ] = None,
    ) -> OpenCasePayload:
        caller = info.context.caller
        arguments = provided(input)
        payload = validated(CaseCreate, arguments)

        async with unit_of_work() as conn:

            async def open_() -> CaseOut:
                return await service.open_case(conn, caller, payload)

            opened, replayed = await run_once(
                conn, caller, idempotency_key, "openCase", arguments, CaseOut, open_
            )
        return OpenCasePayload(case=opened, replayed=replayed)

    @strawberry.mutation(
        description="Change the given fields (as `PATCH /v1/cases/{id}`); `ifMatch` is the "
        "expected version (precondition_failed when stale)."
    )  # type: ignore[untyped-decorator]
    async def update_case(
        self,
        info: GraphQLInfo,
        id: strawberry.ID,
        input: CaseUpdateInput,
        if_match: int | None = None,
    ) -> UpdateCasePayload:
        case_id = parse_case_id(id)
        payload = validated(CaseUpdate, provided(input))
        async with unit_of_work() as conn:
            case = await service.update_case(conn, info.context.caller, case_id, payload, if_match)
        return UpdateCasePayload(case=case)

    @strawberry.mutation(
        description="Move a case along the state machine (as `POST /v1/cases/{id}/transitions`); "
        "an illegal move is `illegal_transition` with the allowed targets in "
        "`extensions.allowed`."
    )  # type: ignore[untyped-decorator]
    async def transition_case(
        self, info: GraphQLInfo, id: strawberry.ID, input: CaseTransitionInput
    ) -> TransitionCasePayload:
        case_id = parse_case_id(id)
        payload = validated(CaseTransitionCreate, provided(input))
        async with unit_of_work() as conn:
            case = await service.transition_case(conn, info.context.caller, case_id, payload)
        return TransitionCasePayload(case=case)

    @strawberry.mutation(
        description="Replace the SLA policy of a priority (as `PUT /v1/sla-policies/{priority}`; "
        "needs `admin`)."
    )  # type: ignore[untyped-decorator]
    async def update_sla_policy(
        self,
        info: GraphQLInfo,
        priority: CasePriorityEnum,
        input: SlaPolicyUpdateInput,
        if_match: int | None = None,
    ) -> UpdateSlaPolicyPayload:
        payload = validated(SlaPolicyUpdate, provided(input))
        async with unit_of_work() as conn:
            policy = await service.update_sla_policy(
                conn, info.context.caller, CasePriority(priority), payload, if_match
            )
        return UpdateSlaPolicyPayload(sla_policy=policy)


# ------------------------------------------------------------------------------- on the customer


async def _next_customer_page(
    conn: Connection, caller: Caller, customer_id: uuid.UUID, limit: int, cursor: str
) -> Page[CaseOut]:
    return await service.list_cases(
        conn,
        caller,
        CaseFilter(customer_id=customer_id),
        sort=CaseSort.opened_at_desc,
        limit=limit,
        cursor=cursor,
    )


_OF_CUSTOMER = OwnedList(
    scope="cases:read",
    query=lambda: repository.list_query(CaseFilter(), CaseSort.opened_at_desc),
    sort=CaseSort.opened_at_desc.value,
    from_row=repository.case_from_row,
    next_page=_next_customer_page,
)


CUSTOMER_FIELD = _OF_CUSTOMER.customer_field(
    "cases",
    CaseEdge,
    CaseConnection,
    description="The customer's cases, newest first (as `GET /v1/cases?customer_id=`).",
)
