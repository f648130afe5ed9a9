"""The first-response hook: an outbound, completed interaction on a case tells the case (its SLA)."""

import uuid
from datetime import datetime
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select

from app.cases import service as cases
from app.cases.models import Case
from app.db import Connection, read_connection
from tests.fixtures.factories import create_customer, create_interaction
from tests.interactions.helpers import store_case


@pytest.fixture
def responses(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every note_response call, as its arguments (the case's own behaviour is tested there)."""
    calls: list[dict[str, Any]] = []

    async def note_response(
        conn: Connection, *, customer_id: uuid.UUID, case_id: uuid.UUID, at: datetime
    ) -> None:
        assert conn.in_transaction()
        calls.append(
            {"customer_id": str(customer_id), "case_id": str(case_id), "at": at.isoformat()}
        )

    monkeypatch.setattr(cases, "note_response", note_response)
    return calls


async def test_logging_a_response_notes_it(
    client: httpx.AsyncClient, responses: list[dict[str, Any]]
) -> None:
    customer = await create_customer(client)
    case_id = await store_case(customer["id"])
    await create_interaction(client, customer["id"], case_id=case_id)  # inbound
    await create_interaction(client, customer["id"], direction="outbound")  # no case
    assert responses == []
    await create_interaction(
        client,
        customer["id"],
        case_id=case_id,
        direction="outbound",
        occurred_at="2026-02-01T08:00:00Z",
    )
    assert responses == [
        {"customer_id": customer["id"], "case_id": case_id, "at": "2026-02-01T08:00:00+00:00"}
    ]


async def test_completing_or_linking_by_patch_notes_it(
    client: httpx.AsyncClient, responses: list[dict[str, Any]]
) -> None:
    customer = await create_customer(client)
    case_id = await store_case(customer["id"])
    follow_up = await create_interaction(
        client,
        customer["id"],
        case_id=case_id,
        direction="outbound",
        status="planned",
        due_at="2030-01-01T00:00:00Z",
    )
    assert responses == []
    url = f"/v1/interactions/{follow_up['id']}"
    done = await client.patch(url, json={"status": "completed"})
    assert done.status_code == 200, done.text
    assert [r["at"] for r in responses] == [
        datetime.fromisoformat(done.json()["occurred_at"]).isoformat()
    ]
    unlinked = await create_interaction(client, customer["id"], direction="outbound")
    url = f"/v1/interactions/{unlinked['id']}"
    assert (await client.patch(url, json={"subject": "x"})).status_code == 200
    assert len(responses) == 1
    linked = await client.patch(url, json={"case_id": case_id})
    assert linked.status_code == 200, linked.text
    assert len(responses) == 2
    assert responses[1]["case_id"] == case_id
    # another customer's case cannot be linked
    other = await create_customer(client)
    foreign = await store_case(other["id"])
    refused = await client.patch(url, json={"case_id": foreign})
    assert refused.status_code == 422
    assert refused.json()["code"] == "case_not_found"
    assert refused.json()["errors"][0]["field"] == "body.case_id"
    assert len(responses) == 2


async def test_the_case_records_its_first_response(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    case_id = await store_case(customer["id"])
    await create_interaction(client, customer["id"], case_id=case_id, direction="outbound")
    async with read_connection() as conn:
        responded = (
            await conn.execute(select(Case.first_responded_at).where(Case.id == uuid.UUID(case_id)))
        ).scalar_one()
    assert responded is not None
