"""Customers over GraphQL: the Relay ``Customer`` node, the ``customers`` connection and mutations.

Every resolver calls the same service functions as REST. Queries take their own read conn (or
a DataLoader, which does); each mutation opens its own ``unit_of_work()``. Inputs are validated by
the same pydantic models as REST bodies; what a caller sees goes through ``service.view`` (PII
fields null without pii:read, named in ``redactedFields``).
"""

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from pydantic import BaseModel, ValidationError
from strawberry import relay
from strawberry.scalars import JSON

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.errors import invalid_input
from app.api.graphql.idempotency import run_once
from app.core.errors import BadRequest, ValidationFailed
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.customers import service
from app.customers.loaders import CustomerView
from app.customers.schemas import CustomerCreate, CustomerOut, CustomerUpdate
from app.db import read_connection, unit_of_work

TYPE_NAME = "Customer"
MAX_FILTER_TEXT = 320
MAX_TAG_FILTERS = 20
MAX_CURSOR = 2000
ModelT = TypeVar("ModelT", bound=BaseModel)


# ---------------------------------------------------------------------------------------------- ids


def parse_customer_id(value: str) -> uuid.UUID:
    """A customer id as clients send it: the Relay global id or the raw UUID."""
    try:
        return uuid.UUID(value)
    except ValueError:
        pass
    type_name, node_id = decode_global_id(value)
    if type_name == TYPE_NAME:
        try:
            return uuid.UUID(node_id)
        except ValueError:
            pass
    raise BadRequest(f"{value!r} is not a customer id.", code="invalid_id")


def decode_global_id(value: str) -> tuple[str, str]:
    """(type name, node id) of a Relay global id; ``invalid_id`` when it is not one."""
    try:
        type_name, node_id = relay.from_base64(value)
    except ValueError as exc:
        raise BadRequest(f"{value!r} is not a valid id.", code="invalid_id") from exc
    if not type_name or not node_id:
        raise BadRequest(f"{value!r} is not a valid id.", code="invalid_id")
    return type_name, node_id


def global_id(customer_id: uuid.UUID) -> str:
    return str(relay.to_base64(TYPE_NAME, str(customer_id)))


# -------------------------------------------------------------------------------------------- types


@strawberry.type(name="Consent", description="Consent for one channel and purpose.")
class ConsentType:
    channel: str
    purpose: str
    status: str
    source: str | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "ConsentType":
        updated_at = row["updated_at"]
        if isinstance(updated_at, str):
            updated_at = datetime.fromisoformat(updated_at)
        return cls(
            channel=row["channel"],
            purpose=row["purpose"],
            status=row["status"],
            source=row.get("source"),
            updated_at=updated_at,
        )


_PII_NOTE = "Null without the pii:read scope (listed in redactedFields)."


@strawberry.type(name=TYPE_NAME, description="A customer profile.")
class CustomerType(relay.Node):
    node_id: relay.NodeID[str]
    customer_id: uuid.UUID = strawberry.field(description="The raw UUID (as used by REST).")
    external_id: str | None
    email: str | None = strawberry.field(description=_PII_NOTE)
    phone: str | None = strawberry.field(description="E.164. " + _PII_NOTE)
    first_name: str | None
    last_name: str | None
    gender: str | None
    birth_date: date | None = strawberry.field(description=_PII_NOTE)
    locale: str | None
    country: str | None
    region: str | None
    city: str | None
    income_band: str | None
    education: str | None
    occupation: str | None
    tags: list[str]
    attributes: JSON
    consent: list[ConsentType]
    source_channel: str | None
    owner: str | None
    notes: str | None
    version: int = strawberry.field(description="Increases on every change; pass as ifMatch.")
    created_at: datetime
    updated_at: datetime
    redacted_fields: list[str] = strawberry.field(
        description="The PII fields that have a value but are null here because the API key "
        "lacks the pii:read scope (email, phone, birth_date); empty when nothing is hidden."
    )

    @classmethod
    def from_view(cls, view: CustomerView) -> "CustomerType":
        """Build from ``service.view(customer, caller)``, which already applied the redaction."""
        return cls(
            node_id=str(view["id"]),
            customer_id=view["id"],
            external_id=view["external_id"],
            email=view["email"],
            phone=view["phone"],
            first_name=view["first_name"],
            last_name=view["last_name"],
            gender=view["gender"],
            birth_date=view["birth_date"],
            locale=view["locale"],
            country=view["country"],
            region=view["region"],
            city=view["city"],
            income_band=view["income_band"],
            education=view["education"],
            occupation=view["occupation"],
            tags=list(view["tags"] or []),
            attributes=JSON(dict(view["attributes"] or {})),
            consent=[ConsentType.from_row(c) for c in view["consent"] or []],
            source_channel=view["source_channel"],
            owner=view["owner"],
            notes=view["notes"],
            version=view["version"],
            created_at=view["created_at"],
            updated_at=view["updated_at"],
            redacted_fields=list(view["redacted_fields"]),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: GraphQLInfo, node_ids: Iterable[str], required: bool = False
    ) -> list["CustomerType | None"]:
        ids = [parse_customer_id(node_id) for node_id in node_ids]
        views = await info.context.customers.by_id.load_many(ids)
        return [cls.from_view(v) if v is not None else None for v in views]


@strawberry.type(name="CustomerEdge")
class CustomerEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this customer.")
    node: CustomerType


@strawberry.type(name="CustomerConnection")
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: relay.PageInfo


@strawberry.enum(name="CustomerSort")
class CustomerSort(Enum):
    CREATED_AT_ASC = "created_at"
    CREATED_AT_DESC = "-created_at"
    UPDATED_AT_ASC = "updated_at"
    UPDATED_AT_DESC = "-updated_at"


# ------------------------------------------------------------------------------------------- inputs


@strawberry.input(name="ConsentInput")
class ConsentInput:
    channel: str
    purpose: str
    status: str
    source: str | None = strawberry.UNSET
    updated_at: datetime | None = strawberry.UNSET


@strawberry.input(name="CustomerCreateInput", description="The same fields as the REST body.")
class CustomerCreateInput:
    external_id: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    gender: str | None = strawberry.UNSET
    birth_date: date | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET
    region: str | None = strawberry.UNSET
    city: str | None = strawberry.UNSET
    income_band: str | None = strawberry.UNSET
    education: str | None = strawberry.UNSET
    occupation: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    consent: list[ConsentInput] | None = strawberry.UNSET
    source_channel: str | None = strawberry.UNSET
    owner: str | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET


@strawberry.input(
    name="CustomerUpdateInput",
    description="Only the fields given change; null clears a field. `attributes` merges by key "
    "(a null value removes that key); `consent` entries replace the same (channel, purpose).",
)
class CustomerUpdateInput(CustomerCreateInput):
    pass


def provided(value: Any) -> Any:
    """A strawberry input as a plain dict of the fields the client actually sent (recursively)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: provided(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not strawberry.UNSET
        }
    if isinstance(value, list):
        return [provided(item) for item in value]
    return value


def validated(model: type[ModelT], data: dict[str, Any], prefix: str = "input") -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, prefix) from None


# ------------------------------------------------------------------------------------------ queries


def _check_filters(
    first: int,
    after: str | None,
    q: str | None,
    country: str | None,
    city: str | None,
    tag: list[str] | None,
) -> None:
    errors: list[dict[str, str]] = []
    if not 1 <= first <= MAX_LIMIT:
        errors.append({"field": "first", "message": f"must be between 1 and {MAX_LIMIT}"})
    if after is not None and len(after) > MAX_CURSOR:
        errors.append({"field": "after", "message": "is not a valid cursor"})
    if q is not None and not 1 <= len(q) <= 200:
        errors.append({"field": "q", "message": "must be 1 to 200 characters"})
    if country is not None and not (len(country) == 2 and country.isascii() and country.isalpha()):
        errors.append({"field": "country", "message": "must be an ISO 3166-1 alpha-2 code"})
    if city is not None and len(city) > MAX_FILTER_TEXT:
        errors.append({"field": "city", "message": f"at most {MAX_FILTER_TEXT} characters"})
    if tag is not None and len(tag) > MAX_TAG_FILTERS:
        errors.append({"field": "tag", "message": f"at most {MAX_TAG_FILTERS} tags"})
    for name, text in (("q", q), ("city", city), *(("tag", t) for t in tag or [])):
        if text is not None and "\x00" in text:
            errors.append({"field": name, "message": "must not contain the NUL character"})
    if errors:
        raise ValidationFailed("The arguments are not valid; see extensions.errors.", errors=errors)


@strawberry.type
class CustomerQueries:
    @strawberry.field(description="A customer by its global id or raw UUID; null if not found.")  # type: ignore[untyped-decorator]
    async def customer(self, info: GraphQLInfo, id: strawberry.ID) -> CustomerType | None:
        view = await info.context.customers.by_id.load(parse_customer_id(id))
        return CustomerType.from_view(view) if view is not None else None

    @strawberry.field(description="Customers, newest first by default (a Relay connection).")  # type: ignore[untyped-decorator]
    async def customers(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        q: Annotated[
            str | None,
            strawberry.argument(
                description="Fuzzy search on name, email and phone; on names only without "
                "the pii:read scope."
            ),
        ] = None,
        country: str | None = None,
        city: str | None = None,
        tag: Annotated[
            list[str] | None, strawberry.argument(description="Customers having all these tags.")
        ] = None,
        sort: CustomerSort = CustomerSort.CREATED_AT_DESC,
    ) -> CustomerConnection:
        _check_filters(first, after, q, country, city, tag)
        caller = info.context.caller
        filters = service.ListFilters(q=q, country=country, city=city, tags=tuple(tag or ()))
        async with read_connection() as conn:
            page = await service.list_customers(
                conn, caller, filters, sort=sort.value, limit=first, cursor=after
            )
            views = [service.view(c, caller) for c in page.items]
        edges = [
            CustomerEdge(cursor=cursor, node=CustomerType.from_view(view))
            for cursor, view in zip(await page.item_cursors(), views, strict=True)
        ]
        return CustomerConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.next_cursor is not None,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
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
                customer = await service.create_customer(conn, caller, payload)
                return CustomerOut.model_validate(service.view(customer, caller))

            created, replayed = await run_once(
                conn, caller, idempotency_key, "createCustomer", arguments, CustomerOut, create
            )
        view = created.model_dump()
        return CreateCustomerPayload(customer=CustomerType.from_view(view), replayed=replayed)

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
            view = service.view(customer, caller)
        return UpdateCustomerPayload(customer=CustomerType.from_view(view))

    @strawberry.mutation(description="Delete a customer (as `DELETE /v1/customers/{id}`).")  # type: ignore[untyped-decorator]
    async def delete_customer(
        self, info: GraphQLInfo, id: strawberry.ID, if_match: int | None = None
    ) -> DeleteCustomerPayload:
        caller = info.context.caller
        customer_id = parse_customer_id(id)
        async with unit_of_work() as conn:
            await service.delete_customer(conn, caller, customer_id, if_match)
        return DeleteCustomerPayload(
            deleted_id=strawberry.ID(global_id(customer_id)), customer_id=customer_id
        )
