"""Batch recording: up to 1,000 orders in one transaction, each item checked and reported on its own,
so one bad item never sinks the others.

Set-based, not item by item: every item is validated in Python first; then one query finds which
customers are live, and one statement writes the orders, their lines, their customers' metrics
and their events (``repository.insert_batch``). Only the items it did not write (their (source,
external_id) is stored already) cost one more query, to say whose order it is. Orders are inserted
sorted by (source, external_id), metrics and events in customer order (the repository's lock
order), so concurrent batches naming the same customers or pairs in any order never deadlock.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.core import clock
from app.core.auth import Caller
from app.core.config import get_settings
from app.core.errors import Conflict, KehuError, batch_item_problem
from app.core.ids import new_id
from app.core.schemas import json_checked
from app.db import Connection
from app.orders import repository, service
from app.orders.schemas import (
    OrderBatch,
    OrderBatchItemResult,
    OrderBatchResult,
    OrderCreate,
)

Pair = tuple[str, str]


@dataclass(slots=True)
class _Item:
    index: int
    payload: OrderCreate
    id: uuid.UUID
    document: dict[str, Any]  # its event data, from which it is written

    @property
    def customer_id(self) -> uuid.UUID:
        return self.payload.customer_id

    @property
    def pair(self) -> Pair | None:
        if self.payload.source is None or self.payload.external_id is None:
            return None
        return (self.payload.source, self.payload.external_id)


def _item_error(index: int, exc: KehuError | ValidationError) -> OrderBatchItemResult:
    return OrderBatchItemResult(index=index, status="error", error=batch_item_problem(exc))


def _existing(index: int, order_id: uuid.UUID) -> OrderBatchItemResult:
    return OrderBatchItemResult(index=index, status="existing", id=order_id)


async def record_batch(
    conn: Connection, caller: Caller, batch: OrderBatch, *, items_plain: bool = False
) -> OrderBatchResult:
    """Record up to 1,000 orders in the caller's transaction; one result per item, in order.

    An item whose (source, external_id) is stored already (or came earlier in this batch) for the
    same customer is ``existing``; for another customer it is an ``external_id_conflict`` error.
    ``items_plain``: the items come from a body ``load_json_body`` found plain, so their models
    skip the hostile-JSON walk (``json_checked``)."""
    caller.require("orders:write")
    now = clock.now()
    results: dict[int, OrderBatchItemResult] = {}
    valid: list[_Item] = []
    with json_checked(items_plain):
        for index, raw in enumerate(batch.items):
            try:
                payload = OrderCreate.model_validate(raw)
                order_id = new_id()
                document = service.order_document(payload, order_id, now)
            except (ValidationError, KehuError) as exc:
                results[index] = _item_error(index, exc)
                continue
            valid.append(_Item(index, payload, order_id, document))

    live = await repository.live_customers(conn, list({item.customer_id for item in valid}))
    first_of: dict[Pair, _Item] = {}
    later: list[tuple[_Item, _Item]] = []  # (a repeat of a pair in this batch, its first item)
    to_insert: list[_Item] = []
    for item in valid:
        if item.customer_id not in live:
            results[item.index] = _item_error(
                item.index, service.customer_not_found(item.customer_id)
            )
            continue
        pair = item.pair
        if pair is not None:
            if pair in first_of:
                later.append((item, first_of[pair]))
                continue
            first_of[pair] = item
        to_insert.append(item)

    # In (source, external_id) order: the unique index entries are the first locks taken.
    to_insert.sort(key=lambda item: (item.pair is None, item.pair or ("", ""), item.index))
    written = await repository.insert_batch(
        conn,
        [{**item.document, "index": item.index, "event_id": new_id()} for item in to_insert],
        get_settings().currency,
        now,
    )
    not_written = [item for item in to_insert if item.id not in written]
    if not_written:
        # Their (source, external_id) is stored already (or by a concurrent writer meanwhile).
        pairs = [item.pair for item in not_written if item.pair is not None]
        stored = await repository.stored_pairs(conn, pairs)
        for item in not_written:
            if not _settled(item, stored, results):
                results[item.index] = _item_error(
                    item.index, Conflict("The item conflicts with a concurrent write; retry it.")
                )
    for item in to_insert:
        if item.id in written:
            results[item.index] = OrderBatchItemResult(
                index=item.index, status="created", id=item.id
            )
    for item, first in later:
        outcome = results[first.index]
        if outcome.status == "error":
            results[item.index] = outcome.model_copy(update={"index": item.index})
        elif first.customer_id == item.customer_id:
            results[item.index] = _existing(item.index, outcome.id)  # type: ignore[arg-type]
        else:
            assert item.pair is not None
            results[item.index] = _item_error(item.index, service.external_id_conflict(*item.pair))

    ordered = [results[index] for index in range(len(batch.items))]
    return OrderBatchResult(
        results=ordered,
        created=sum(1 for r in ordered if r.status == "created"),
        existing=sum(1 for r in ordered if r.status == "existing"),
        errors=sum(1 for r in ordered if r.status == "error"),
    )


def _settled(
    item: _Item,
    stored: dict[Pair, tuple[uuid.UUID, uuid.UUID]],
    results: dict[int, OrderBatchItemResult],
) -> bool:
    """Whether the item's pair is stored already; if so its result is set (existing, or a
    conflict when the stored order is another customer's)."""
    pair = item.pair
    if pair is None or pair not in stored:
        return False
    customer_id, order_id = stored[pair]
    if customer_id == item.customer_id:
        results[item.index] = _existing(item.index, order_id)
    else:
        results[item.index] = _item_error(item.index, service.external_id_conflict(*pair))
    return True
