"""Customer use cases, shared by REST, GraphQL, jobs and imports. Signature: (conn, caller, payload).

Every function returns the stored customer (``CustomerOut``); ``view`` turns it into what one
caller may see.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from app.core import clock
from app.core.auth import Caller
from app.core.errors import (
    Conflict,
    Forbidden,
    KehuError,
    NotFound,
    ValidationFailed,
)
from app.core.http import check_version
from app.core.ids import new_id
from app.core.pagination import Page, fetch_page
from app.customers import repository
from app.customers.schemas import (
    CUSTOMER_PII,
    Consent,
    CustomerCreate,
    CustomerFilter,
    CustomerOut,
    CustomerSort,
    CustomerUpdate,
    check_attribute_totals,
    normalize_phone,
)
from app.customers.search import CustomerQuery
from app.db import Connection
from app.events import service as events
from app.rules import service as rules

_PII_ORDER = sorted(CUSTOMER_PII)
_NOT_IN_SNAPSHOT = {"redacted_fields"}


def snapshot(customer: CustomerOut) -> dict[str, Any]:
    """The customer as events carry it: every stored field, JSON-ready, nothing redacted."""
    return customer.model_dump(mode="json", exclude=_NOT_IN_SNAPSHOT)


def view(customer: CustomerOut, caller: Caller) -> CustomerOut:
    """The customer as this caller may see it: PII only with the pii:read scope. Without it the PII
    fields are None and ``redacted_fields`` names those that had a value."""
    if caller.has("pii:read"):
        return customer
    redacted = [field for field in _PII_ORDER if getattr(customer, field) is not None]
    if not redacted:
        return customer
    hidden: dict[str, Any] = dict.fromkeys(redacted)
    hidden["redacted_fields"] = redacted
    return customer.model_copy(update=hidden)


def _consent_rows(entries: Sequence[Consent], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "channel": c.channel.value,
            "purpose": c.purpose.value,
            "status": c.status.value,
            "source": c.source,
            "updated_at": (c.updated_at or now).isoformat(),
        }
        for c in entries
    ]


def _merge_consent(
    current: CustomerOut, entries: Sequence[Consent], now: datetime
) -> list[dict[str, Any]]:
    merged = {(c["channel"], c["purpose"]): c for c in to_jsonable_python(current.consent)}
    for row in _consent_rows(entries, now):
        merged[(row["channel"], row["purpose"])] = row
    return sorted(merged.values(), key=lambda c: (c["channel"], c["purpose"]))


async def explain_taken(conn: Connection, email: str | None, external_id: str | None) -> KehuError:
    """Why a write of this email or external_id was refused (it did not happen: nothing to lock)."""
    holders = await repository.holders_of(
        conn,
        emails=[email] if email else [],
        external_ids=[external_id] if external_id else [],
        lock=False,
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


async def create_customer(conn: Connection, caller: Caller, payload: CustomerCreate) -> CustomerOut:
    caller.require("customers:write")
    values = _create_values(payload, clock.now())
    # Every column is given, none defaulted: the customer as it will be stored, for the event
    # and the answer alike.
    customer = CustomerOut.from_stored(values)
    event = events.customer_event("customer.created", snapshot(customer))
    if not await repository.insert_with_event(conn, values, event):
        raise await explain_taken(conn, payload.email, payload.external_id)
    return customer


async def get_customer(conn: Connection, caller: Caller, customer_id: uuid.UUID) -> CustomerOut:
    caller.require("customers:read")
    customer = await repository.get(conn, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}.", code="customer_not_found")
    return customer


async def find_customer(
    conn: Connection, caller: Caller, customer_id: uuid.UUID
) -> CustomerOut | None:
    caller.require("customers:read")
    return await repository.get(conn, customer_id)


async def get_customers(
    conn: Connection, caller: Caller, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerOut]:
    caller.require("customers:read")
    return {c.id: c for c in await repository.get_many(conn, ids)}


async def _locked_at_version(
    conn: Connection, customer_id: uuid.UUID, expected_version: int | None
) -> CustomerOut:
    """The live customer, row-locked for this transaction, if it is at ``expected_version``."""
    customer = await repository.get_for_update(conn, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}.", code="customer_not_found")
    check_version(customer.version, expected_version, "customer")
    return customer


def planned_changes(
    customer: CustomerOut, payload: CustomerUpdate, now: datetime
) -> dict[str, Any]:
    """The columns to write for ``payload`` (only those whose value really changes)."""
    given = payload.model_dump(exclude_unset=True)
    current = customer.model_dump(mode="json", include=set(given))
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
            value = _merge_consent(customer, payload.consent or [], now)
        elif field == "tags" and value is None:
            value = []
        if to_jsonable_python(value) != current[field]:
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


async def apply_update(
    conn: Connection, customer: CustomerOut, values: dict[str, Any], now: datetime
) -> CustomerOut:
    """Write planned changes and their ``customer.updated`` event."""
    before = customer.model_dump(mode="json", include=set(values))
    updated = await repository.save_changes(conn, customer.id, {**values, "updated_at": now})
    after = updated.model_dump(mode="json", include=set(values))
    changes = {field: [before[field], after[field]] for field in values}
    await events.record(
        conn, "customer.updated", customer_id=updated.id, data=snapshot(updated), changes=changes
    )
    return updated


async def update_customer(
    conn: Connection,
    caller: Caller,
    customer_id: uuid.UUID,
    payload: CustomerUpdate,
    expected_version: int | None = None,
) -> CustomerOut:
    caller.require("customers:write")
    customer = await _locked_at_version(conn, customer_id, expected_version)
    now = clock.now()
    values = planned_changes(customer, payload, now)
    if not values:
        return customer
    await check_free(conn, customer.id, values.get("email"), values.get("external_id"))
    return await apply_update(conn, customer, values, now)


async def check_free(
    conn: Connection, customer_id: uuid.UUID, email: str | None, external_id: str | None
) -> None:
    """Refuse an email or external_id that another live customer holds."""
    if email is None and external_id is None:
        return
    holders = await repository.holders_of(
        conn, emails=[email] if email else [], external_ids=[external_id] if external_id else []
    )
    if any(h.id != customer_id for h in holders):
        raise await explain_taken(conn, email, external_id)


async def delete_customer(
    conn: Connection,
    caller: Caller,
    customer_id: uuid.UUID,
    expected_version: int | None = None,
) -> None:
    caller.require("customers:write")
    customer = await _locked_at_version(conn, customer_id, expected_version)
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
    filters: CustomerFilter,
    *,
    sort: CustomerSort,
    limit: int,
    cursor: str | None,
) -> Page[CustomerOut]:
    caller.require("customers:read")
    if isinstance(filters, CustomerQuery) and filters.rule is not None:
        rules.check_may_run(caller, filters.rule)
    sees_pii = caller.has("pii:read")
    if not sees_pii and filters.uses_pii():
        # An equality filter on PII would tell a key without pii:read who is a customer.
        raise Forbidden(
            "Filtering by email or phone needs the pii:read scope.", code="pii_read_required"
        )
    query = repository.list_query(filters, sort, q_names_only=not sees_pii)
    page = await fetch_page(conn, query, limit=limit, cursor=cursor, sort=sort.value)
    return page.mapped(repository.customer_from_row)
