"""Customer use cases, shared by REST, GraphQL, jobs and imports. Signature: (conn, caller, payload)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from app.core import clock
from app.core.auth import PII_FIELDS, Caller
from app.core.errors import (
    Conflict,
    Forbidden,
    KehuError,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
    problem_body,
)
from app.core.errors import validation_errors as to_field_errors
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.customers import repository
from app.customers.repository import CustomerRow
from app.customers.schemas import (
    BatchItemResult,
    BatchStatus,
    Consent,
    CustomerBatch,
    CustomerBatchItem,
    CustomerBatchResult,
    CustomerCreate,
    CustomerUpdate,
    check_attribute_totals,
    normalize_phone,
)
from app.db import Connection
from app.events import service as events

PROFILE_FIELDS = [
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "gender",
    "birth_date",
    "locale",
    "country",
    "region",
    "city",
    "income_band",
    "education",
    "occupation",
    "tags",
    "attributes",
    "consent",
    "source_channel",
    "owner",
    "notes",
]


@dataclass(frozen=True)
class ListFilters:
    q: str | None = None
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    tags: tuple[str, ...] = ()
    owner: str | None = None
    source_channel: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


def _json_value(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def snapshot(customer: CustomerRow) -> dict[str, Any]:
    """The customer as events carry it (every profile field, JSON-ready)."""
    data = {field: _json_value(getattr(customer, field)) for field in PROFILE_FIELDS}
    data["id"] = str(customer.id)
    data["version"] = customer.version
    return data


_PII_ORDER = sorted(PII_FIELDS)


def view(customer: CustomerRow, caller: Caller) -> dict[str, Any]:
    """The customer as this caller may see it: PII only with the pii:read scope. Without it the PII
    fields are None and ``redacted_fields`` names those that had a value."""
    data = {field: getattr(customer, field) for field in PROFILE_FIELDS}
    data.update(
        id=customer.id,
        version=customer.version,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )
    redacted: list[str] = []
    if not caller.has("pii:read"):
        for field in _PII_ORDER:
            if data[field] is not None:
                data[field] = None
                redacted.append(field)
    data["redacted_fields"] = redacted
    return data


def _consent_rows(entries: Sequence[Consent], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "channel": c.channel,
            "purpose": c.purpose,
            "status": c.status,
            "source": c.source,
            "updated_at": (c.updated_at or now).isoformat(),
        }
        for c in entries
    ]


def _merge_consent(
    current: list[dict[str, Any]], entries: Sequence[Consent], now: datetime
) -> list[dict[str, Any]]:
    merged = {(c["channel"], c["purpose"]): c for c in current}
    for row in _consent_rows(entries, now):
        merged[(row["channel"], row["purpose"])] = row
    return sorted(merged.values(), key=lambda c: (c["channel"], c["purpose"]))


async def _explain_taken(conn: Connection, email: str | None, external_id: str | None) -> KehuError:
    holders = await repository.holders_of(
        conn,
        emails=[email] if email else [],
        external_ids=[external_id] if external_id else [],
    )
    for holder in holders:
        if external_id and holder.external_id == external_id:
            return Conflict(
                f"external_id {external_id!r} already belongs to customer {holder.id}.",
                code="external_id_taken",
            )
        if email and holder.email == email:
            # Never name the holder: the email is PII, and its holder's id would tie them together.
            return Conflict("The email already belongs to another customer.", code="email_taken")
    return Conflict("The customer conflicts with another one being written.", code="conflict")


def _create_values(payload: CustomerCreate, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(repository.INSERTABLE)
    values.update(tags=[], attributes={}, version=1)
    values.update(payload.model_dump(exclude={"consent"}, exclude_none=True))
    values.update(
        id=new_id(),
        consent=_consent_rows(payload.consent or [], now),
        created_at=now,
        updated_at=now,
    )
    return values


async def create_customer(conn: Connection, caller: Caller, payload: CustomerCreate) -> CustomerRow:
    caller.require("customers:write")
    now = clock.now()
    customer = await repository.insert_unless_taken(conn, _create_values(payload, now))
    if customer is None:
        raise await _explain_taken(conn, payload.email, payload.external_id)
    await events.record(conn, "customer.created", customer_id=customer.id, data=snapshot(customer))
    return customer


async def get_customer(conn: Connection, caller: Caller, customer_id: uuid.UUID) -> CustomerRow:
    caller.require("customers:read")
    customer = await repository.get(conn, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}.", code="customer_not_found")
    return customer


async def get_customers(
    conn: Connection, caller: Caller, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerRow]:
    caller.require("customers:read")
    return {c.id: c for c in await repository.get_many(conn, ids)}


def _check_version(customer: CustomerRow, expected_version: int | None) -> None:
    if expected_version is not None and customer.version != expected_version:
        raise PreconditionFailed(
            f"The customer is at version {customer.version}, not {expected_version}; "
            "fetch it again and retry.",
            code="version_mismatch",
        )


def _planned_changes(
    customer: CustomerRow, payload: CustomerUpdate, now: datetime
) -> dict[str, Any]:
    given = payload.model_dump(exclude_unset=True)
    values: dict[str, Any] = {}
    for field, value in given.items():
        if field == "attributes":
            merged = dict(customer.attributes)
            for key, item in (value or {}).items():
                if item is None:
                    merged.pop(key, None)
                else:
                    merged[key] = item
            value = _checked_attributes(merged)
        elif field == "phone" and value is not None and not value.startswith("+"):
            # National form with no country in the body: read it in the customer's stored country.
            value = _phone_in_country(value, customer.country)
        elif field == "consent":
            value = _merge_consent(customer.consent, payload.consent or [], now)
        elif field == "tags" and value is None:
            value = []
        if value != getattr(customer, field):
            values[field] = value
    return values


def _checked_attributes(merged: dict[str, Any]) -> dict[str, Any]:
    try:
        check_attribute_totals(merged)
    except ValueError as exc:
        raise ValidationFailed(
            "The attributes after this change would be over the limit.",
            errors=[{"field": "body.attributes", "message": str(exc)}],
        ) from None
    return merged


def _phone_in_country(phone: str, country: str | None) -> str:
    try:
        return normalize_phone(phone, country)
    except ValueError as exc:
        raise ValidationFailed(
            "The request is not valid; see errors[].",
            errors=[{"field": "body.phone", "message": f"Value error, {exc}"}],
        ) from None


async def _apply_update(
    conn: Connection, customer: CustomerRow, values: dict[str, Any], now: datetime
) -> CustomerRow:
    before = {field: _json_value(getattr(customer, field)) for field in values}
    updated = await repository.save_changes(conn, customer.id, {**values, "updated_at": now})
    changes = {field: [before[field], _json_value(getattr(updated, field))] for field in values}
    await events.record(
        conn,
        "customer.updated",
        customer_id=updated.id,
        data=snapshot(updated),
        changes=changes,
    )
    return updated


async def update_customer(
    conn: Connection,
    caller: Caller,
    customer_id: uuid.UUID,
    payload: CustomerUpdate,
    expected_version: int | None = None,
) -> CustomerRow:
    caller.require("customers:write")
    customer = await repository.get_for_update(conn, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}.", code="customer_not_found")
    _check_version(customer, expected_version)
    now = clock.now()
    values = _planned_changes(customer, payload, now)
    if not values:
        return customer
    await _check_free(conn, customer.id, values.get("email"), values.get("external_id"))
    return await _apply_update(conn, customer, values, now)


async def _check_free(
    conn: Connection, customer_id: uuid.UUID, email: str | None, external_id: str | None
) -> None:
    if email is None and external_id is None:
        return
    holders = await repository.holders_of(
        conn, emails=[email] if email else [], external_ids=[external_id] if external_id else []
    )
    if any(h.id != customer_id for h in holders):
        raise await _explain_taken(conn, email, external_id)


async def delete_customer(
    conn: Connection,
    caller: Caller,
    customer_id: uuid.UUID,
    expected_version: int | None = None,
) -> None:
    caller.require("customers:write")
    customer = await repository.get_for_update(conn, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}.", code="customer_not_found")
    _check_version(customer, expected_version)
    await repository.soft_delete(conn, customer_id, clock.now())
    await events.record(
        conn,
        "customer.deleted",
        customer_id=customer_id,
        data={"id": str(customer_id), "external_id": customer.external_id},
    )


async def list_customers(
    conn: Connection,
    caller: Caller,
    filters: ListFilters,
    *,
    sort: str,
    limit: int,
    cursor: str | None,
) -> Page[CustomerRow]:
    caller.require("customers:read")
    sees_pii = caller.has("pii:read")
    if not sees_pii and (filters.email is not None or filters.phone is not None):
        # An equality filter on PII would tell a key without pii:read who is a customer.
        raise Forbidden(
            "Filtering by email or phone needs the pii:read scope.", code="pii_read_required"
        )
    query = repository.list_query(
        sort=sort,
        q=filters.q,
        q_names_only=not sees_pii,
        email=filters.email.lower() if filters.email else None,
        phone=filters.phone,
        external_id=filters.external_id,
        country=filters.country.upper() if filters.country else None,
        region=filters.region,
        city=filters.city,
        tags=[t.lower() for t in filters.tags],
        owner=filters.owner,
        source_channel=filters.source_channel,
        created_range=(filters.created_after, filters.created_before),
        updated_range=(filters.updated_after, filters.updated_before),
    )
    return await fetch_page(conn, query, limit=limit, cursor=cursor, sort=sort)


def _batch_match(
    item: CustomerBatchItem, by_external: dict[str, CustomerRow], by_email: dict[str, CustomerRow]
) -> CustomerRow | None:
    """external_id decides when the item has one; email matches only a customer that has no
    other external_id (so an upsert never silently re-keys someone else's record)."""
    if item.external_id and item.external_id in by_external:
        return by_external[item.external_id]
    holder = by_email.get(item.email) if item.email else None
    if holder is not None and (not item.external_id or holder.external_id is None):
        return holder
    return None


async def _upsert_one(
    conn: Connection, caller: Caller, item: CustomerBatchItem, match: CustomerRow | None
) -> tuple[CustomerRow, BatchStatus]:
    if match is None:
        return await create_customer(conn, caller, item), "created"
    now = clock.now()
    update = CustomerUpdate.model_validate(item.model_dump(exclude_unset=True))
    values = _planned_changes(match, update, now)
    if not values:
        return match, "unchanged"
    await _check_free(conn, match.id, values.get("email"), values.get("external_id"))
    return await _apply_update(conn, match, values, now), "updated"


def _item_error(index: int, exc: KehuError | ValidationError) -> BatchItemResult:
    if isinstance(exc, ValidationError):
        body = problem_body(
            422,
            "validation_failed",
            "The item is not valid; see errors[].",
            None,
            to_field_errors(exc.errors()),
        )
    else:
        body = problem_body(exc.status, exc.code, exc.detail, None, exc.errors)
    body.pop("request_id", None)
    return BatchItemResult(index=index, status="error", error=body)


async def batch_upsert(
    conn: Connection, caller: Caller, batch: CustomerBatch
) -> CustomerBatchResult:
    """Upsert up to 1,000 customers in the caller's transaction, matching on external_id, then email.

    Each item is checked on its own and reported on its own; valid items are written even when
    others fail, all in one transaction.
    """
    caller.require("customers:write")
    parsed: dict[int, CustomerBatchItem] = {}
    results: dict[int, BatchItemResult] = {}
    for index, raw in enumerate(batch.items):
        try:
            parsed[index] = CustomerBatchItem.model_validate(raw)
        except ValidationError as exc:
            results[index] = _item_error(index, exc)

    existing = await repository.holders_of(
        conn,
        emails={p.email for p in parsed.values() if p.email},
        external_ids={p.external_id for p in parsed.values() if p.external_id},
    )
    by_external = {c.external_id: c for c in existing if c.external_id}
    by_email = {c.email: c for c in existing if c.email}

    for index, item in parsed.items():
        match = _batch_match(item, by_external, by_email)
        try:
            async with conn.begin_nested():
                customer, status = await _upsert_one(conn, caller, item, match)
        except KehuError as exc:
            results[index] = _item_error(index, exc)
            continue
        except IntegrityError:
            results[index] = _item_error(
                index, Conflict("The item conflicts with a concurrent write; retry it.")
            )
            continue
        if customer.external_id:
            by_external[customer.external_id] = customer
        if customer.email:
            by_email[customer.email] = customer
        results[index] = BatchItemResult(index=index, status=status, id=customer.id)

    ordered = [results[i] for i in range(len(batch.items))]
    counts = {
        state: sum(1 for r in ordered if r.status == state)
        for state in ("created", "updated", "unchanged", "error")
    }
    return CustomerBatchResult(
        results=ordered,
        created=counts["created"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        errors=counts["error"],
    )
