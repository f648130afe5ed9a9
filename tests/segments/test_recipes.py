"""Every recipe of docs/segments.md is a valid rule, and those over profiles and orders pick
exactly the customers they describe. (The value and win-back recipes read the analytics
refresh's figures; here they are checked to run, and tests/rules holds their operators to the
evaluator.)"""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tests.fixtures.factories import create_customer, create_order

DOC = Path(__file__).resolve().parents[2] / "docs" / "segments.md"


def _recipes() -> list[dict[str, Any]]:
    text = DOC.read_text().split("## Recipes", 1)[1]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def _preview(client: httpx.AsyncClient, rule: dict[str, Any]) -> set[str]:
    response = await client.post("/v1/segments/preview", json={"rule": rule, "sample": 100})
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["sample"]}


async def test_the_recipes_pick_who_they_describe(client: httpx.AsyncClient) -> None:
    south, frequent, occasional, champions, tier_a, values, win_back = _recipes()
    in_south = await create_customer(client, country="CN", region="Guangdong")
    await create_customer(client, country="CN", region="Heilongjiang")
    await create_customer(client, country="DE", region="Fujian")
    buyer = await create_customer(client, country="DE")
    for days in (5, 30, 60):
        await create_order(client, buyer["id"], occurred_at=_days_ago(days))
    casual = await create_customer(client, country="DE")
    for days in (200, 20):
        await create_order(client, casual["id"], occurred_at=_days_ago(days))
    lapsed = await create_customer(client, country="DE")
    await create_order(client, lapsed["id"], occurred_at=_days_ago(400))
    green = await create_customer(
        client, tags=["outdoor"], attributes={"values": ["sustainability", "family"]}
    )
    await create_customer(client, tags=["outdoor"], attributes={"values": "sustainability"})

    assert await _preview(client, south) == {in_south["id"]}
    assert await _preview(client, frequent) == {buyer["id"]}
    assert await _preview(client, occasional) == {casual["id"]}
    assert await _preview(client, values) == {green["id"]}
    for rule in (champions, tier_a, win_back):
        # No analytics refresh has run: no customer has an RFM segment, tier or churn risk.
        assert await _preview(client, rule) == set()
