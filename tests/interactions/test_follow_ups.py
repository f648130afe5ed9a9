"""Follow-ups: the list by due date, and follow_up.due announced exactly once per follow-up."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx2 as httpx
import pytest
import time_machine

from app.interactions import service, tasks
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import create_customer, create_interaction
from tests.interactions.helpers import events_of

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


async def test_follow_up_list(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    late = await create_interaction(
        client, customer["id"], status="planned", due_at=at(30), agent="wang"
    )
    early = await create_interaction(client, other["id"], status="planned", due_at=at(10))
    same_time = await create_interaction(client, customer["id"], status="planned", due_at=at(10))
    await create_interaction(client, customer["id"])  # completed: not a follow-up
    dropped = await create_interaction(client, customer["id"], status="planned", due_at=at(5))
    await client.patch(f"/v1/interactions/{dropped['id']}", json={"status": "cancelled"})

    async def ids(**params: str) -> list[str]:
        response = await client.get("/v1/follow-ups", params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["data"]]

    by_id = sorted([early["id"], same_time["id"]])
    assert await ids() == [*by_id, late["id"]]
    assert await ids(due_before=at(20)) == by_id
    assert await ids(agent="wang") == [late["id"]]
    assert await ids(customer_id=other["id"]) == [early["id"]]
    assert await ids(status="cancelled") == [dropped["id"]]
    page = (await client.get("/v1/follow-ups", params={"limit": 2})).json()
    assert [i["id"] for i in page["data"]] == by_id
    rest = await client.get("/v1/follow-ups", params={"limit": 2, "cursor": page["next_cursor"]})
    assert [i["id"] for i in rest.json()["data"]] == [late["id"]]
    assert rest.json()["has_more"] is False
    wrong_sort = await client.get("/v1/interactions", params={"cursor": page["next_cursor"]})
    assert_problem(wrong_sort, 400, "invalid_cursor")


async def test_due_follow_ups_are_announced_once(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    with time_machine.travel(START, tick=False) as traveller:
        soon = await create_interaction(client, customer["id"], status="planned", due_at=at(10))
        later = await create_interaction(client, customer["id"], status="planned", due_at=at(60))
        await tasks.announce_due_follow_ups({})
        assert await events_of("follow_up.due") == []
        traveller.move_to(START + timedelta(minutes=10))
        await tasks.announce_due_follow_ups({})
        await tasks.announce_due_follow_ups({})
        [event] = await events_of("follow_up.due")
        assert event.data["id"] == soon["id"]
        assert str(event.customer_id) == customer["id"]
        # a new due date makes it announceable again, when it comes
        moved = await client.patch(f"/v1/interactions/{soon['id']}", json={"due_at": at(20)})
        assert moved.status_code == 200, moved.text
        await tasks.announce_due_follow_ups({})
        assert len(await events_of("follow_up.due")) == 1
        traveller.move_to(START + timedelta(minutes=61))
        await tasks.announce_due_follow_ups({})
        events = await events_of("follow_up.due")
        assert sorted(e.data["id"] for e in events) == sorted([soon["id"], soon["id"], later["id"]])
        # completed or cancelled follow-ups are never announced
        done = await create_interaction(client, customer["id"], status="planned", due_at=at(70))
        await client.patch(f"/v1/interactions/{done['id']}", json={"status": "completed"})
        traveller.move_to(START + timedelta(minutes=80))
        await tasks.announce_due_follow_ups({})
        assert len(await events_of("follow_up.due")) == 3


async def test_concurrent_job_runs_announce_each_follow_up_once(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small batches, so both runs loop many times over the same due rows
    monkeypatch.setattr(service, "ANNOUNCE_BATCH", 3)
    customers = [await create_customer(client) for _ in range(3)]
    with time_machine.travel(START, tick=False) as traveller:
        created = [
            await create_interaction(
                client, customers[n % 3]["id"], status="planned", due_at=at(n % 7)
            )
            for n in range(40)
        ]
        traveller.move_to(START + timedelta(minutes=10))
        await asyncio.gather(*(tasks.announce_due_follow_ups({}) for _ in range(4)))
    announced = [e.data["id"] for e in await events_of("follow_up.due")]
    assert sorted(announced) == sorted(c["id"] for c in created)
    for customer in customers:
        sequences = [e.sequence for e in await events_of("follow_up.due", customer["id"])]
        assert len(sequences) == len(set(sequences))


def test_the_job_runs_every_minute() -> None:
    assert tasks.SCHEDULES == {"interactions.announce_due_follow_ups": "* * * * *"}
    assert set(tasks.JOBS) == set(tasks.SCHEDULES)
