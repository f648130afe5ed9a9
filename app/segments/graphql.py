"""Segments over GraphQL: the Relay ``Segment`` node, ``segment(id)``, the ``segments`` and
``segmentMembers`` connections, ``previewSegment``, the mutations of REST, and ``Customer.segments``
(one query per request, through a DataLoader); on the same service functions as REST."""

import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.extend import type_field
from app.api.graphql.idempotency import run_once
from app.api.graphql.ids import global_id, parse_id
from app.api.graphql.inputs import validated
from app.api.graphql.pagination import check_page, connection
from app.api.graphql.pydantic_types import graphql_enum, input_type, object_type, provided
from app.core.pagination import DEFAULT_LIMIT
from app.db import read_connection, unit_of_work
from app.segments import service
from app.segments.loaders import segments_by_id, segments_of_customer
from app.segments.schemas import (
    CustomerSegmentOut,
    MembersChange,
    MembersChangeResult,
    MembershipOut,
    SegmentCreate,
    SegmentOut,
    SegmentPreview,
    SegmentPreviewOut,
    SegmentRefreshOut,
    SegmentSort,
    SegmentUpdate,
)

TYPE_NAME = "Segment"


def parse_segment_id(value: str) -> uuid.UUID:
    return parse_id(TYPE_NAME, value)


async def _load_nodes(info: GraphQLInfo, node_ids: list[str]) -> list[SegmentOut | None]:
    ids = [parse_segment_id(node_id) for node_id in node_ids]
    return await info.context.loader(segments_by_id).load_many(ids)


SegmentType: Any = object_type(SegmentOut, name=TYPE_NAME, node=_load_nodes)
MembershipType: Any = object_type(MembershipOut, name="SegmentMembership")
CustomerSegmentType: Any = object_type(CustomerSegmentOut, name="CustomerSegment")
SegmentPreviewType: Any = object_type(SegmentPreviewOut, name="SegmentPreview")
SegmentRefreshType: Any = object_type(SegmentRefreshOut, name="SegmentRefresh")
MembersChangeType: Any = object_type(MembersChangeResult, name="SegmentMembersChange")
SegmentCreateInput: Any = input_type(
    SegmentCreate, name="SegmentCreateInput", description="The same fields as the REST body."
)
SegmentUpdateInput: Any = input_type(
    SegmentUpdate, name="SegmentUpdateInput", description="The fields to change."
)
SegmentSortEnum: Any = graphql_enum(SegmentSort)


@strawberry.type(name="SegmentEdge")
class SegmentEdge:
    cursor: str
    node: SegmentType


@strawberry.type(name="SegmentConnection")
class SegmentConnection:
    edges: list[SegmentEdge]
    page_info: relay.PageInfo


@strawberry.type(name="SegmentMembershipEdge")
class SegmentMembershipEdge:
    cursor: str
    node: MembershipType


@strawberry.type(name="SegmentMembershipConnection")
class SegmentMembershipConnection:
    edges: list[SegmentMembershipEdge]
    page_info: relay.PageInfo


@strawberry.type
class SegmentQueries:
    @strawberry.field(
        description="A segment by its global id or raw UUID; null if not found (scope "
        "`segments:read`)."
    )  # type: ignore[untyped-decorator]
    async def segment(self, info: GraphQLInfo, id: strawberry.ID) -> SegmentType | None:
        return await info.context.loader(segments_by_id).load(parse_segment_id(id))

    @strawberry.field(description="Segments, newest first by default (scope `segments:read`).")  # type: ignore[untyped-decorator]
    async def segments(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        sort: SegmentSortEnum = SegmentSort.created_at_desc,
    ) -> SegmentConnection:
        check_page(first, after)
        async with read_connection() as conn:
            page = await service.list_segments(
                conn, info.context.caller, sort=SegmentSort(sort), limit=first, cursor=after
            )
        return await connection(page, after, SegmentEdge, SegmentConnection)

    @strawberry.field(
        description="A segment's members now, or at `asOf` (as `GET /v1/segments/{id}/members`)."
    )  # type: ignore[untyped-decorator]
    async def segment_members(
        self,
        info: GraphQLInfo,
        id: strawberry.ID,
        as_of: datetime | None = None,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> SegmentMembershipConnection:
        check_page(first, after)
        async with read_connection() as conn:
            page = await service.list_members(
                conn,
                info.context.caller,
                parse_segment_id(id),
                as_of=as_of,
                limit=first,
                cursor=after,
            )
        return await connection(page, after, SegmentMembershipEdge, SegmentMembershipConnection)

    @strawberry.field(
        description="How many customers a rule matches now, and a sample; nothing is saved (as "
        "`POST /v1/segments/preview`)."
    )  # type: ignore[untyped-decorator]
    async def preview_segment(
        self, info: GraphQLInfo, rule: JSON, sample: int = 10
    ) -> SegmentPreviewType:
        payload = validated(SegmentPreview, {"rule": rule, "sample": sample}, "")
        async with read_connection() as conn:
            return await service.preview(conn, info.context.caller, payload)


@strawberry.type
class CreateSegmentPayload:
    segment: SegmentType
    replayed: bool


@strawberry.type
class DeleteSegmentPayload:
    deleted_id: strawberry.ID
    segment_id: uuid.UUID


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(description="Create a segment (as `POST /v1/segments`).")  # type: ignore[untyped-decorator]
    async def create_segment(
        self,
        info: GraphQLInfo,
        input: SegmentCreateInput,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(description="Retry-safe key (as REST's Idempotency-Key)."),
        ] = None,
    ) -> CreateSegmentPayload:
        caller = info.context.caller
        arguments = provided(input)
        payload = validated(SegmentCreate, arguments)
        async with unit_of_work() as conn:

            async def create() -> SegmentOut:
                return await service.create_segment(conn, caller, payload)

            created, replayed = await run_once(
                conn, caller, idempotency_key, "createSegment", arguments, SegmentOut, create
            )
        return CreateSegmentPayload(segment=created, replayed=replayed)

    @strawberry.mutation(
        description="Change the given fields (as `PATCH /v1/segments/{id}`); `ifMatch` is the "
        "expected version."
    )  # type: ignore[untyped-decorator]
    async def update_segment(
        self,
        info: GraphQLInfo,
        id: strawberry.ID,
        input: SegmentUpdateInput,
        if_match: int | None = None,
    ) -> SegmentType:
        payload = validated(SegmentUpdate, provided(input))
        async with unit_of_work() as conn:
            return await service.update_segment(
                conn, info.context.caller, parse_segment_id(id), payload, if_match
            )

    @strawberry.mutation(description="Delete a segment (as `DELETE /v1/segments/{id}`).")  # type: ignore[untyped-decorator]
    async def delete_segment(
        self, info: GraphQLInfo, id: strawberry.ID, if_match: int | None = None
    ) -> DeleteSegmentPayload:
        segment_id = parse_segment_id(id)
        async with unit_of_work() as conn:
            await service.delete_segment(conn, info.context.caller, segment_id, if_match)
        return DeleteSegmentPayload(
            deleted_id=strawberry.ID(global_id(TYPE_NAME, segment_id)), segment_id=segment_id
        )

    @strawberry.mutation(description="Refresh a dynamic segment now (as REST's refresh).")  # type: ignore[untyped-decorator]
    async def refresh_segment(self, info: GraphQLInfo, id: strawberry.ID) -> SegmentRefreshType:
        async with unit_of_work() as conn:
            return await service.refresh_segment(conn, info.context.caller, parse_segment_id(id))

    @strawberry.mutation(description="Add customers to a static segment (up to 1,000).")  # type: ignore[untyped-decorator]
    async def add_segment_members(
        self, info: GraphQLInfo, id: strawberry.ID, customer_ids: list[uuid.UUID]
    ) -> MembersChangeType:
        payload = validated(MembersChange, {"customer_ids": customer_ids})
        async with unit_of_work() as conn:
            return await service.change_members(
                conn, info.context.caller, parse_segment_id(id), payload, add=True
            )

    @strawberry.mutation(description="Remove customers from a static segment (up to 1,000).")  # type: ignore[untyped-decorator]
    async def remove_segment_members(
        self, info: GraphQLInfo, id: strawberry.ID, customer_ids: list[uuid.UUID]
    ) -> MembersChangeType:
        payload = validated(MembersChange, {"customer_ids": customer_ids})
        async with unit_of_work() as conn:
            return await service.change_members(
                conn, info.context.caller, parse_segment_id(id), payload, add=False
            )


async def customer_segments(root: Any, info: GraphQLInfo) -> list[CustomerSegmentType]:
    return await info.context.loader(segments_of_customer).load(root.id)


CUSTOMER_FIELD = type_field(
    "segments",
    customer_segments,
    description="The segments the customer belongs to now (as `GET "
    "/v1/customers/{id}/segments`; scope `segments:read`).",
)
