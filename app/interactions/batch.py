"""Batch logging: up to 1,000 interactions in one transaction, each item checked and reported on its
own (and in its own savepoint), so one bad item never sinks the others."""

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from app.core.auth import Caller
from app.core.errors import Conflict, KehuError, batch_item_problem
from app.core.schemas import json_checked
from app.db import Connection
from app.interactions import service
from app.interactions.schemas import (
    InteractionBatch,
    InteractionBatchItemResult,
    InteractionBatchResult,
    InteractionCreate,
)


def _item_error(index: int, exc: KehuError | ValidationError) -> InteractionBatchItemResult:
    return InteractionBatchItemResult(index=index, status="error", error=batch_item_problem(exc))


async def log_batch(
    conn: Connection, caller: Caller, batch: InteractionBatch, *, items_plain: bool = False
) -> InteractionBatchResult:
    """Log up to 1,000 interactions in the caller's transaction; one result per item, in order.

    An item whose (source, external_id) is stored already (or came earlier in this batch) for the
    same customer is ``existing``; for another customer it is an ``external_id_conflict`` error.
    ``items_plain``: the items come from a body ``load_json_body`` found plain (no hostile-JSON
    walk per item)."""
    caller.require("interactions:write")
    results: dict[int, InteractionBatchItemResult] = {}
    valid: list[tuple[int, InteractionCreate]] = []
    with json_checked(items_plain):
        for index, raw in enumerate(batch.items):
            try:
                valid.append((index, InteractionCreate.model_validate(raw)))
            except ValidationError as exc:
                results[index] = _item_error(index, exc)
    # Written in customer order (request order within a customer): each item's event locks its
    # customer's sequence row, and two batches taking those locks in different orders would
    # deadlock. So a pair sent for two customers in one batch is created for the first customer
    # in id order, not in request order.
    for index, item in sorted(valid, key=lambda entry: (entry[1].customer_id, entry[0])):
        try:
            async with conn.begin_nested():
                interaction, created = await service.log_interaction(
                    conn, caller, item, only_write=False
                )
        except KehuError as exc:
            results[index] = _item_error(index, exc)
            continue
        except IntegrityError:
            results[index] = _item_error(
                index, Conflict("The item conflicts with a concurrent write; retry it.")
            )
            continue
        results[index] = InteractionBatchItemResult(
            index=index, status="created" if created else "existing", id=interaction.id
        )
    ordered = [results[index] for index in range(len(batch.items))]
    return InteractionBatchResult(
        results=ordered,
        created=sum(1 for r in ordered if r.status == "created"),
        existing=sum(1 for r in ordered if r.status == "existing"),
        errors=sum(1 for r in ordered if r.status == "error"),
    )
