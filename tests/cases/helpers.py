"""Helpers of the case tests: the events of a type, a case driven to a status, policies."""

from collections import deque
from typing import Any

import httpx2 as httpx
from sqlalchemy import text

from app.cases.enums import TRANSITIONS, CaseStatus
from app.db import read_connection
from tests.fixtures.factories import create_customer, open_case

RESOLUTION = {"outcome": "refunded", "note": "Refunded in full."}


async def events_of(type: str) -> list[dict[str, Any]]:
    """Every stored event of this type, oldest first, as {customer_id, data, changes}."""
    async with read_connection() as conn:
        result = await conn.execute(
            text(
                "SELECT customer_id, data, changes FROM events WHERE type = :type "
                "ORDER BY customer_id, sequence"
            ),
            {"type": type},
        )
        return [dict(row._mapping) for row in result]


def path_to(target: CaseStatus) -> list[CaseStatus]:
    """The shortest walk from open to ``target`` along the state machine (the table itself)."""
    paths: dict[CaseStatus, list[CaseStatus]] = {CaseStatus.OPEN: []}
    queue = deque([CaseStatus.OPEN])
    while queue:
        current = queue.popleft()
        for following in TRANSITIONS[current]:
            if following not in paths:
                paths[following] = [*paths[current], following]
                queue.append(following)
    return paths[target]


def transition_body(to: CaseStatus, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": to.value, **extra}
    if to == CaseStatus.RESOLVED:
        body.setdefault("resolution", RESOLUTION)
    return body


async def move(
    client: httpx.AsyncClient, case_id: str, to: CaseStatus, **extra: Any
) -> httpx.Response:
    return await client.post(f"/v1/cases/{case_id}/transitions", json=transition_body(to, **extra))


async def case_in(
    client: httpx.AsyncClient, status: CaseStatus, **overrides: Any
) -> dict[str, Any]:
    """A new case (of a new customer) moved to ``status``; the case as it is then."""
    customer = await create_customer(client)
    case = await open_case(client, customer["id"], **overrides)
    for step in path_to(status):
        response = await move(client, case["id"], step)
        assert response.status_code == 200, response.text
        case = response.json()
    return case


async def put_policy(client: httpx.AsyncClient, priority: str, **policy: Any) -> dict[str, Any]:
    response = await client.put(f"/v1/sla-policies/{priority}", json=policy)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
