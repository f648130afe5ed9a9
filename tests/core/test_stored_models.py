"""OutputModel.from_stored builds the same instance as model_validate for what Kehu stored."""

import copy
import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select

from app.apikeys.models import ApiKey
from app.apikeys.schemas import ApiKeyOut
from app.core.schemas import OutputModel
from app.customers.models import Customer
from app.customers.schemas import CustomerCreate, CustomerOut, Gender
from app.db import read_connection
from app.events.models import Event
from app.events.schemas import EventOut
from tests.fixtures.events import wait_stamped
from tests.fixtures.factories import customer_body


def _same(stored: OutputModel, validated: OutputModel) -> None:
    assert stored == validated
    assert stored.model_dump_json() == validated.model_dump_json()
    for name in type(validated).model_fields:
        assert type(getattr(stored, name)) is type(getattr(validated, name)), name


async def _rows(model: Any) -> list[dict[str, Any]]:
    async with read_connection() as conn:
        return [dict(row._mapping) for row in await conn.execute(select(model.__table__))]


async def test_stored_customers_events_and_keys_read_back_as_validated(
    client: httpx.AsyncClient,
) -> None:
    full = CustomerCreate.model_json_schema()["examples"][0]
    bodies = [
        {**full, "email": "full@example.com", "external_id": "full-1"},
        customer_body(gender="female", consent=[]),
        {"first_name": "Only"},
    ]
    for body in bodies:
        response = await client.post("/v1/customers", json=body)
        assert response.status_code == 201, response.text
        # The create answers from what it wrote, without reading it back: the same as a read.
        read = await client.get(f"/v1/customers/{response.json()['id']}")
        assert read.json() == response.json()
        assert read.headers["etag"] == response.headers["etag"]
    await wait_stamped()

    customers = await _rows(Customer)
    assert len(customers) == len(bodies)
    fields = set(CustomerOut.model_fields)
    for row in customers:
        columns = {name: value for name, value in row.items() if name in fields}
        _same(CustomerOut.from_stored(columns), CustomerOut.model_validate(columns))
    full_row = next(r for r in customers if r["external_id"] == "full-1")
    rebuilt = CustomerOut.from_stored(full_row)
    assert rebuilt.gender is Gender.male
    assert rebuilt.consent
    assert type(rebuilt.consent[0]).__name__ == "ConsentOut"
    assert isinstance(rebuilt.consent[0].channel, Enum)

    for event in await _rows(Event):
        columns = {k: v for k, v in event.items() if k in EventOut.model_fields}
        _same(EventOut.from_stored(columns), EventOut.model_validate(columns))
    for key in await _rows(ApiKey):
        columns = {k: v for k, v in key.items() if k in ApiKeyOut.model_fields}
        _same(ApiKeyOut.from_stored(columns), ApiKeyOut.model_validate(columns))


def test_defaults_fill_what_is_not_given_and_are_not_shared() -> None:
    now = datetime.now(UTC)
    given = {"id": uuid.uuid4(), "version": 1, "created_at": now, "updated_at": now}
    first, second = CustomerOut.from_stored(given), CustomerOut.from_stored(copy.deepcopy(given))
    _same(first, CustomerOut.model_validate(given))
    first.tags.append("x")
    first.redacted_fields.append("email")
    assert second.tags == []
    assert second.redacted_fields == []


def test_a_missing_required_field_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="created_at"):
        CustomerOut.from_stored({"id": uuid.uuid4(), "version": 1})
