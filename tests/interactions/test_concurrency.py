"""Concurrent writers of one (source, external_id): one interaction, one event, whoever wins."""

import asyncio

import httpx2 as httpx

from tests.fixtures.factories import create_customer, interaction_body
from tests.interactions.helpers import events_of


async def test_concurrent_logs_of_one_pair_log_it_once(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    body = interaction_body(customer["id"])
    responses = await asyncio.gather(
        *(client.post("/v1/interactions", json=body) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await events_of("interaction.logged")) == 1


async def test_concurrent_logs_of_one_pair_for_two_customers(client: httpx.AsyncClient) -> None:
    first, second = await create_customer(client), await create_customer(client)
    body = interaction_body(first["id"])
    responses = await asyncio.gather(
        *(
            client.post("/v1/interactions", json={**body, "customer_id": c["id"]})
            for c in (first, second) * 4
        )
    )
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1
    owner = created[0].json()["customer_id"]
    for response, customer in zip(responses, (first, second) * 4, strict=True):
        if response.status_code == 201:
            continue
        if customer["id"] == owner:
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "external_id_conflict"
    assert len(await events_of("interaction.logged")) == 1
