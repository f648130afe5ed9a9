"""Batch upsert: up to 1,000 customers in one transaction, each item checked and reported on its own."""

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from app.core import clock
from app.core.auth import Caller
from app.core.errors import Conflict, KehuError, batch_item_problem
from app.core.schemas import json_checked
from app.customers import repository, service
from app.customers.schemas import (
    BatchItemResult,
    BatchStatus,
    CustomerBatch,
    CustomerBatchItem,
    CustomerBatchResult,
    CustomerOut,
    CustomerUpdate,
)
from app.db import Connection


def _match(
    item: CustomerBatchItem,
    by_external: dict[str, CustomerOut],
    by_email: dict[str, CustomerOut],
) -> CustomerOut | None:
    """external_id decides when the item has one; email matches only a customer that has no
    other external_id (so an upsert never silently re-keys someone else's record)."""
    if item.external_id and item.external_id in by_external:
        return by_external[item.external_id]
    holder = by_email.get(item.email) if item.email else None
    if holder is not None and (not item.external_id or holder.external_id is None):
        return holder
    return None


async def _upsert_one(
    conn: Connection, caller: Caller, item: CustomerBatchItem, match: CustomerOut | None
) -> tuple[CustomerOut, BatchStatus]:
    if match is None:
        return await service.create_customer(conn, caller, item), "created"
    now = clock.now()
    update = CustomerUpdate.model_validate(item.model_dump(exclude_unset=True))
    values = service.planned_changes(match, update, now)
    if not values:
        return match, "unchanged"
    await service.check_free(conn, match.id, values.get("email"), values.get("external_id"))
    return await service.apply_update(conn, match, values, now), "updated"


def _item_error(index: int, exc: KehuError | ValidationError) -> BatchItemResult:
    return BatchItemResult(index=index, status="error", error=batch_item_problem(exc))


async def batch_upsert(
    conn: Connection, caller: Caller, batch: CustomerBatch, *, items_plain: bool = False
) -> CustomerBatchResult:
    """Upsert up to 1,000 customers in the caller's transaction, matching on external_id, then email.

    Each item is checked on its own and reported on its own; valid items are written even when
    others fail, all in one transaction (each item in its own savepoint). ``items_plain``: the
    items come from a body ``load_json_body`` found plain (no hostile-JSON walk per item).
    """
    caller.require("customers:write")
    parsed: dict[int, CustomerBatchItem] = {}
    results: dict[int, BatchItemResult] = {}
    with json_checked(items_plain):
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
        match = _match(item, by_external, by_email)
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
