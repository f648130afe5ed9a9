import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import StreamingResponse

from app.api.deps import KehuRoute, ScopeDep
from app.api.problems import problem_doc
from app.api.responses import json_response, page_response
from app.api.routing import IfMatchDep, QueryRoute, resource_router
from app.core.http import etag, expected_version
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut
from app.db import unit_of_work
from app.segments import service
from app.segments.schemas import (
    CustomerSegmentsOut,
    ExportFormat,
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

segments_router = resource_router("/segments", "segments")
customer_router = resource_router("/customers", "segments")


@segments_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a segment",
    description="A dynamic segment (a rule) is filled at once: every customer is compared with "
    "the rule in the same transaction, and each one who enters gets a "
    "`segment.member_entered` event. A static segment starts empty.",
    response_model=SegmentOut,
    responses={409: problem_doc("The name is taken (`segment_name_taken`).")},
)
async def create_segment(body: SegmentCreate, scope: ScopeDep) -> Response:
    segment = await service.create_segment(scope.conn, scope.caller, body)
    return json_response(
        segment,
        status.HTTP_201_CREATED,
        ETag=etag(segment.version),
        Location=f"/v1/segments/{segment.id}",
    )


@segments_router.get("", summary="List segments", response_model=PageOut[SegmentOut])
async def list_segments(
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    sort: Annotated[SegmentSort, Query(description="Field, `-` for descending.")] = (
        SegmentSort.created_at_desc
    ),
) -> Response:
    page = await service.list_segments(
        scope.conn, scope.caller, sort=sort, limit=limit, cursor=cursor
    )
    return page_response(page)


async def preview_segment(body: SegmentPreview, scope: ScopeDep) -> Response:
    return json_response(await service.preview(scope.conn, scope.caller, body))


segments_router.add_api_route(
    "/preview",
    preview_segment,
    methods=["POST"],
    route_class_override=QueryRoute,
    summary="Preview a rule",
    description="How many customers the rule matches now, and a sample (newest first); nothing "
    "is saved. Needs the read scopes of what the rule names.",
    response_model=SegmentPreviewOut,
)


@segments_router.get("/{segment_id}", summary="Get a segment", response_model=SegmentOut)
async def get_segment(segment_id: uuid.UUID, scope: ScopeDep) -> Response:
    segment = await service.get_segment(scope.conn, scope.caller, segment_id)
    return json_response(segment, ETag=etag(segment.version))


@segments_router.patch(
    "/{segment_id}",
    summary="Update a segment",
    description="A new rule moves `rule_version` on and compares every customer with it at "
    "once (entered and exited events for those who move).",
    response_model=SegmentOut,
    responses={409: problem_doc("The name is taken (`segment_name_taken`).")},
)
async def update_segment(
    segment_id: uuid.UUID, body: SegmentUpdate, scope: ScopeDep, if_match: IfMatchDep = None
) -> Response:
    segment = await service.update_segment(
        scope.conn, scope.caller, segment_id, body, expected_version(if_match)
    )
    return json_response(segment, ETag=etag(segment.version))


@segments_router.delete(
    "/{segment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a segment",
    description="With its membership history; no exit events are sent.",
)
async def delete_segment(
    segment_id: uuid.UUID, scope: ScopeDep, if_match: IfMatchDep = None
) -> Response:
    await service.delete_segment(scope.conn, scope.caller, segment_id, expected_version(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@segments_router.post(
    "/{segment_id}/refresh",
    summary="Refresh a dynamic segment now",
    description="Compares every customer with the rule (one set-based statement) and answers "
    "how many entered and exited. The scheduled refresh does this for every dynamic segment "
    "(`KEHU_SEGMENTS_REFRESH_CRON`).",
    response_model=SegmentRefreshOut,
    responses={409: problem_doc("A static segment has no rule (`segment_is_static`).")},
)
async def refresh_segment(segment_id: uuid.UUID, scope: ScopeDep) -> Response:
    return json_response(await service.refresh_segment(scope.conn, scope.caller, segment_id))


@segments_router.get(
    "/{segment_id}/members",
    summary="A segment's members",
    description="The current stays, oldest first; with `as_of`, the stays that had begun and "
    "not yet ended at that time (the membership history is kept).",
    response_model=PageOut[MembershipOut],
)
async def list_segment_members(
    segment_id: uuid.UUID,
    scope: ScopeDep,
    as_of: Annotated[datetime | None, Query(description="An RFC 3339 time.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    page = await service.list_members(
        scope.conn, scope.caller, segment_id, as_of=as_of, limit=limit, cursor=cursor
    )
    return page_response(page)


_EXPORT_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.ndjson: "application/x-ndjson",
}


@segments_router.get(
    "/{segment_id}/members/export",
    summary="Export a segment's members",
    description="Every member, streamed as NDJSON (one object per line) or CSV (a header row "
    "first): customer_id, external_id, first_name, last_name, email, phone, country, region, "
    "city, entered_at, rule_version, in no particular order. The members are those of one "
    "snapshot taken as the export starts, read through a server-side cursor (memory stays flat, "
    "whatever the size); email and phone are empty without `pii:read`. Needs `segments:read` "
    "and `customers:read`.",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The members, streamed.",
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"customer_id":"01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f",'
                    '"external_id":"shop-10042","first_name":"伟","last_name":"王",'
                    '"email":null,"phone":null,"country":"CN","region":"Shanghai",'
                    '"city":"Shanghai","entered_at":"2026-11-25T09:31:00Z","rule_version":1}\n',
                },
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "customer_id,external_id,first_name,last_name,email,phone,"
                    "country,region,city,entered_at,rule_version\n",
                },
            },
        }
    },
)
async def export_segment_members(
    segment_id: uuid.UUID,
    scope: ScopeDep,
    format: Annotated[ExportFormat, Query(description="`ndjson` or `csv`.")] = (
        ExportFormat.ndjson
    ),
) -> Response:
    caller = scope.caller
    await service.start_export(scope.conn, caller, segment_id)

    async def stream() -> AsyncIterator[bytes]:
        # One transaction for the whole export: one snapshot, one server-side cursor. It holds a
        # connection while the client reads.
        async with unit_of_work() as conn:
            async for chunk in service.export_members(
                conn, caller, segment_id, export_format=format
            ):
                yield chunk

    filename = f"segment-{segment_id}.{format.value}"
    return StreamingResponse(
        stream(),
        media_type=_EXPORT_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@segments_router.post(
    "/{segment_id}/members",
    summary="Add members to a static segment",
    description="Up to 1,000 customers; one result per customer given (`added`, "
    "`already_member`, `customer_not_found`); each one added gets a "
    "`segment.member_entered` event.",
    response_model=MembersChangeResult,
    responses={409: problem_doc("The segment is dynamic (`segment_is_dynamic`).")},
)
async def add_segment_members(
    segment_id: uuid.UUID, body: MembersChange, scope: ScopeDep
) -> Response:
    result = await service.change_members(scope.conn, scope.caller, segment_id, body, add=True)
    return json_response(result)


@segments_router.delete(
    "/{segment_id}/members",
    summary="Remove members from a static segment",
    description="Up to 1,000 customers in the body; one result per customer given "
    "(`removed`, `not_member`, `customer_not_found`); each one removed gets a "
    "`segment.member_exited` event.",
    response_model=MembersChangeResult,
    responses={409: problem_doc("The segment is dynamic (`segment_is_dynamic`).")},
)
async def remove_segment_members(
    segment_id: uuid.UUID, body: MembersChange, scope: ScopeDep
) -> Response:
    result = await service.change_members(scope.conn, scope.caller, segment_id, body, add=False)
    return json_response(result)


@customer_router.get(
    "/{customer_id}/segments",
    summary="A customer's segments",
    description="The segments the customer belongs to now, with when they entered and under "
    "which rule version.",
    response_model=CustomerSegmentsOut,
)
async def list_customer_segments(customer_id: uuid.UUID, scope: ScopeDep) -> Response:
    found = await service.customer_segments(scope.conn, scope.caller, customer_id)
    return json_response(CustomerSegmentsOut(data=found))


# The domain's one router: both resource routers' routes side by side (as app/analytics does).
router = APIRouter(route_class=KehuRoute)
router.routes.extend([*segments_router.routes, *customer_router.routes])
