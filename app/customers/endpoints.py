import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from app.api.deps import CallerDep, KehuRoute, SessionDep
from app.core.errors import problem_doc
from app.core.http import etag, expected_version
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut
from app.customers import service
from app.customers.schemas import (
    CustomerBatch,
    CustomerBatchResult,
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
)

router = APIRouter(prefix="/customers", tags=["customers"], route_class=KehuRoute)

SortField = Literal["created_at", "-created_at", "updated_at", "-updated_at"]
FilterText = Annotated[str | None, Query(max_length=320, pattern=r"^[^\x00]*$")]
IfMatch = Annotated[
    str | None,
    Header(description='The ETag from a previous read, e.g. `"v3"`; 412 if it is stale.'),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a customer",
    responses={409: problem_doc("The email or external_id belongs to another customer.")},
)
async def create_customer(
    body: CustomerCreate,
    caller: CallerDep,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$",
            description="Retry-safe key (≤ 255 printable ASCII characters, kept 24 h): the same "
            "key and body replay the stored response.",
        ),
    ] = None,
) -> CustomerOut:
    customer = await service.create_customer(session, caller, body)
    response.headers["ETag"] = etag(customer.version)
    response.headers["Location"] = f"/v1/customers/{customer.id}"
    return CustomerOut.model_validate(service.view(customer, caller))


@router.get("", summary="List customers")
async def list_customers(
    caller: CallerDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    sort: Annotated[SortField, Query(description="Field, `-` for descending.")] = "-created_at",
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=r"^[^\x00]*$",
            description="Fuzzy search on name, email and phone (trigram; works for Chinese "
            "names); on names only without the pii:read scope.",
        ),
    ] = None,
    email: Annotated[
        str | None,
        Query(
            max_length=320,
            pattern=r"^[^\x00]*$",
            description="Exact email; needs the pii:read scope (403 `pii_read_required`).",
        ),
    ] = None,
    phone: Annotated[
        str | None,
        Query(
            max_length=320,
            pattern=r"^[^\x00]*$",
            description="Exact E.164 phone; needs the pii:read scope (403 `pii_read_required`).",
        ),
    ] = None,
    external_id: FilterText = None,
    country: Annotated[
        str | None, Query(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")
    ] = None,
    region: FilterText = None,
    city: FilterText = None,
    tag: Annotated[
        list[str] | None,
        Query(max_length=20, description="Customers having all these tags (repeat the parameter)."),
    ] = None,
    owner: FilterText = None,
    source_channel: FilterText = None,
    created_at_gte: Annotated[datetime | None, Query(alias="created_at[gte]")] = None,
    created_at_lte: Annotated[datetime | None, Query(alias="created_at[lte]")] = None,
    updated_at_gte: Annotated[datetime | None, Query(alias="updated_at[gte]")] = None,
    updated_at_lte: Annotated[datetime | None, Query(alias="updated_at[lte]")] = None,
) -> PageOut[CustomerOut]:
    filters = service.ListFilters(
        q=q,
        email=email,
        phone=phone,
        external_id=external_id,
        country=country,
        region=region,
        city=city,
        tags=tuple(t for t in (tag or []) if "\x00" not in t),
        owner=owner,
        source_channel=source_channel,
        created_after=created_at_gte,
        created_before=created_at_lte,
        updated_after=updated_at_gte,
        updated_before=updated_at_lte,
    )
    page = await service.list_customers(
        session, caller, filters, sort=sort, limit=limit, cursor=cursor
    )
    return PageOut[CustomerOut](
        data=[CustomerOut.model_validate(service.view(c, caller)) for c in page.items],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )


@router.post(
    "/batch",
    summary="Upsert up to 1,000 customers",
    description="Matches on `external_id`, then `email`. One transaction; one result per item "
    "(an invalid item is reported and skipped, the others are written).",
)
async def upsert_customers_batch(
    body: CustomerBatch, caller: CallerDep, session: SessionDep
) -> CustomerBatchResult:
    return await service.batch_upsert(session, caller, body)


@router.get("/{customer_id}", summary="Get a customer")
async def get_customer(
    customer_id: uuid.UUID, caller: CallerDep, session: SessionDep, response: Response
) -> CustomerOut:
    customer = await service.get_customer(session, caller, customer_id)
    response.headers["ETag"] = etag(customer.version)
    return CustomerOut.model_validate(service.view(customer, caller))


@router.patch(
    "/{customer_id}",
    summary="Update a customer",
    responses={412: problem_doc("If-Match names a stale version.")},
)
async def update_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    caller: CallerDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> CustomerOut:
    customer = await service.update_customer(
        session, caller, customer_id, body, expected_version(if_match)
    )
    response.headers["ETag"] = etag(customer.version)
    return CustomerOut.model_validate(service.view(customer, caller))


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a customer",
    responses={412: problem_doc("If-Match names a stale version.")},
)
async def delete_customer(
    customer_id: uuid.UUID, caller: CallerDep, session: SessionDep, if_match: IfMatch = None
) -> Response:
    await service.delete_customer(session, caller, customer_id, expected_version(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
