import uuid
from typing import Annotated

from fastapi import Query, Response, status

from app.api.deps import ScopeDep
from app.api.problems import problem_doc
from app.api.responses import json_response, page_response
from app.api.routing import IfMatchDep, QueryRoute, resource_router
from app.core.http import etag, expected_version
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut
from app.customers import batch, service
from app.customers.schemas import (
    CustomerBatch,
    CustomerBatchResult,
    CustomerCreate,
    CustomerFilter,
    CustomerOut,
    CustomerSort,
    CustomerUpdate,
)
from app.customers.search import CustomerSearch
from app.timeline import service as timeline
from app.timeline.schemas import TimelineEntry

router = resource_router("/customers", "customers")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a customer",
    response_model=CustomerOut,
    responses={409: problem_doc("The email or external_id belongs to another customer.")},
)
async def create_customer(
    body: CustomerCreate,
    scope: ScopeDep,
) -> Response:
    customer = await service.create_customer(scope.conn, scope.caller, body)
    return json_response(
        service.view(customer, scope.caller),
        status.HTTP_201_CREATED,
        ETag=etag(customer.version),
        Location=f"/v1/customers/{customer.id}",
    )


@router.get("", summary="List customers", response_model=PageOut[CustomerOut])
async def list_customers(
    scope: ScopeDep,
    filters: Annotated[CustomerFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    sort: Annotated[CustomerSort, Query(description="Field, `-` for descending.")] = (
        CustomerSort.created_at_desc
    ),
) -> Response:
    page = await service.list_customers(
        scope.conn, scope.caller, filters, sort=sort, limit=limit, cursor=cursor
    )
    return page_response(page.mapped(lambda c: service.view(c, scope.caller)))


async def search_customers(body: CustomerSearch, scope: ScopeDep) -> Response:
    page = await service.list_customers(
        scope.conn, scope.caller, body, sort=body.sort, limit=body.limit, cursor=body.cursor
    )
    return page_response(page.mapped(lambda c: service.view(c, scope.caller)))


router.add_api_route(
    "/search",
    search_customers,
    methods=["POST"],
    route_class_override=QueryRoute,
    summary="Search customers with a rule",
    description="The filters of `GET /v1/customers`, free text `q`, and a `rule` of the rule "
    "language (docs/rules.md; `GET /v1/rules/fields` lists the fields), all of which must hold; "
    "sorted and paged as the list is (`next_cursor` with the same sort and question pages on). "
    "Conditions on metrics need `analytics:read`, on orders `orders:read`, on interactions "
    "`interactions:read`, on email, phone or birth_date `pii:read` (403 otherwise). A read: "
    "nothing is stored, and Idempotency-Key does not apply.",
    response_model=PageOut[CustomerOut],
)


@router.post(
    "/batch",
    summary="Upsert up to 1,000 customers",
    description="Matches on `external_id`, then `email`. One transaction; one result per item "
    "(an invalid item is reported and skipped, the others are written).",
    response_model=CustomerBatchResult,
)
async def upsert_customers_batch(body: CustomerBatch, scope: ScopeDep) -> Response:
    result = await batch.batch_upsert(scope.conn, scope.caller, body, items_plain=scope.body_plain)
    return json_response(result)


@router.get("/{customer_id}", summary="Get a customer", response_model=CustomerOut)
async def get_customer(customer_id: uuid.UUID, scope: ScopeDep) -> Response:
    customer = await service.get_customer(scope.conn, scope.caller, customer_id)
    return json_response(service.view(customer, scope.caller), ETag=etag(customer.version))


@router.patch(
    "/{customer_id}",
    summary="Update a customer",
    response_model=CustomerOut,
    responses={409: problem_doc("The email or external_id belongs to another customer.")},
)
async def update_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    scope: ScopeDep,
    if_match: IfMatchDep = None,
) -> Response:
    customer = await service.update_customer(
        scope.conn, scope.caller, customer_id, body, expected_version(if_match)
    )
    return json_response(service.view(customer, scope.caller), ETag=etag(customer.version))


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a customer",
)
async def delete_customer(
    customer_id: uuid.UUID, scope: ScopeDep, if_match: IfMatchDep = None
) -> Response:
    await service.delete_customer(scope.conn, scope.caller, customer_id, expected_version(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{customer_id}/timeline",
    summary="A customer's timeline",
    description="Everything that happened to the customer, newest first: interactions, cases "
    "(`case` when opened, `case_transition` for each status change) and feedback; other "
    "domains add their entries as they land. One cursor runs across kinds, so new entries "
    "arriving while a client pages never shift or repeat the pages it has not read yet. "
    "Entries of kinds the key may not read (`interactions:read`, `cases:read`) are left out; "
    "asking for such a kind in `kinds` is a 403.",
    response_model=PageOut[TimelineEntry],
)
async def get_customer_timeline(
    customer_id: uuid.UUID,
    scope: ScopeDep,
    kinds: Annotated[
        list[str] | None,
        Query(
            description="Only these kinds, repeated or comma-separated "
            "(`interaction`, `case`, `case_transition`, `feedback`).",
            max_length=20,
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    page = await timeline.customer_timeline(
        scope.conn, scope.caller, customer_id, kinds=kinds, limit=limit, cursor=cursor
    )
    return page_response(page)
