"""Cases over REST: the cases (``/cases``, with their transitions) and the SLA policies
(``/sla-policies``), two resources of one domain on one router."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.api.deps import KehuRoute, ScopeDep
from app.api.problems import problem_doc
from app.api.responses import json_response, page_response
from app.api.routing import IfMatchDep, resource_router
from app.cases import service
from app.cases.enums import CasePriority
from app.cases.schemas import (
    CaseCreate,
    CaseFilter,
    CaseOut,
    CaseSort,
    CaseTransitionCreate,
    CaseTransitionOut,
    CaseUpdate,
    SlaPolicyList,
    SlaPolicyOut,
    SlaPolicyUpdate,
)
from app.core.http import etag, expected_version
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut

cases_router = resource_router("/cases", "cases")
policies_router = resource_router("/sla-policies", "cases")


@cases_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Open a case",
    description="Status `open`, the SLA deadlines from the priority's policy; the opening is the "
    "first row of the case's history. An unknown or deleted customer is 422 `customer_not_found`.",
    response_model=CaseOut,
)
async def open_case(body: CaseCreate, scope: ScopeDep) -> Response:
    case = await service.open_case(scope.conn, scope.caller, body)
    return json_response(
        case,
        status.HTTP_201_CREATED,
        ETag=etag(case.version),
        Location=f"/v1/cases/{case.id}",
    )


@cases_router.get("", summary="List cases", response_model=PageOut[CaseOut])
async def list_cases(
    scope: ScopeDep,
    filters: Annotated[CaseFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    sort: Annotated[CaseSort, Query(description="Field, `-` for descending.")] = (
        CaseSort.opened_at_desc
    ),
) -> Response:
    page = await service.list_cases(
        scope.conn, scope.caller, filters, sort=sort, limit=limit, cursor=cursor
    )
    return page_response(page)


@cases_router.get("/{case_id}", summary="Get a case", response_model=CaseOut)
async def get_case(case_id: uuid.UUID, scope: ScopeDep) -> Response:
    case = await service.get_case(scope.conn, scope.caller, case_id)
    return json_response(case, ETag=etag(case.version))


@cases_router.patch(
    "/{case_id}",
    summary="Update a case",
    description="Not the status (that is a transition). A new priority moves the running SLA "
    "deadlines to its policy, keeping the business time already used.",
    response_model=CaseOut,
)
async def update_case(
    case_id: uuid.UUID,
    body: CaseUpdate,
    scope: ScopeDep,
    if_match: IfMatchDep = None,
) -> Response:
    case = await service.update_case(
        scope.conn, scope.caller, case_id, body, expected_version(if_match)
    )
    return json_response(case, ETag=etag(case.version))


@cases_router.post(
    "/{case_id}/transitions",
    summary="Move a case to another status",
    description="Along the state machine (docs/cases.md): open → in_progress, waiting_customer, "
    "resolved; in_progress → waiting_customer, resolved; waiting_customer → in_progress, "
    "resolved; resolved → closed, open; closed → open. Reopening is allowed within "
    "`KEHU_CASE_REOPEN_WINDOW_DAYS` of the resolution or closing. Answers the case.",
    response_model=CaseOut,
    responses={
        409: problem_doc(
            "`illegal_transition`: the state machine has no such move (the problem's `allowed` "
            "lists the statuses the case can move to); `reopen_window_expired`: resolved or "
            "closed too long ago to reopen."
        )
    },
)
async def transition_case(
    case_id: uuid.UUID, body: CaseTransitionCreate, scope: ScopeDep
) -> Response:
    case = await service.transition_case(scope.conn, scope.caller, case_id, body)
    return json_response(case, ETag=etag(case.version))


@cases_router.get(
    "/{case_id}/transitions",
    summary="List a case's status history",
    description="Oldest first; the opening (from null to open) is the first.",
    response_model=PageOut[CaseTransitionOut],
)
async def list_case_transitions(
    case_id: uuid.UUID,
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    page = await service.list_transitions(
        scope.conn, scope.caller, case_id, limit=limit, cursor=cursor
    )
    return page_response(page)


@policies_router.get(
    "",
    summary="List the SLA policies",
    description="One per priority, urgent first.",
    response_model=SlaPolicyList,
)
async def list_sla_policies(scope: ScopeDep) -> Response:
    found = await service.list_sla_policies(scope.conn, scope.caller)
    return json_response(SlaPolicyList(data=found))


@policies_router.get("/{priority}", summary="Get an SLA policy", response_model=SlaPolicyOut)
async def get_sla_policy(priority: CasePriority, scope: ScopeDep) -> Response:
    policy = await service.get_sla_policy(scope.conn, scope.caller, priority)
    return json_response(policy, ETag=etag(policy.version))


@policies_router.put(
    "/{priority}",
    summary="Replace an SLA policy",
    description="Needs the `admin` scope. Targets 1 minute to 365 days of business time; "
    "`time_zone` an IANA zone; business hours both given (start before end) or both null "
    "(around the clock). Open cases move to it at their next clock change.",
    response_model=SlaPolicyOut,
)
async def update_sla_policy(
    priority: CasePriority,
    body: SlaPolicyUpdate,
    scope: ScopeDep,
    if_match: IfMatchDep = None,
) -> Response:
    policy = await service.update_sla_policy(
        scope.conn, scope.caller, priority, body, expected_version(if_match)
    )
    return json_response(policy, ETag=etag(policy.version))


# The domain's one router: the routes of both resources side by side, as their resource routers
# built them (KehuRoutes with full paths), so the app includes them one level deep like any other.
router = APIRouter(route_class=KehuRoute)
router.routes.extend([*cases_router.routes, *policies_router.routes])
