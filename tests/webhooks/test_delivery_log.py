"""The delivery log, retry, replay, the test ping and endpoint health: REST and GraphQL, delivering
to real receivers on 127.0.0.1 that verify every request with standardwebhooks."""

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
import time_machine
from sqlalchemy import func, select

from app.core import clock
from app.core.config import get_settings
from app.db import read_connection
from app.webhooks import delivery, service
from app.webhooks.repository import deliveries
from tests.fixtures.api import assert_problem, error_codes, gql
from tests.fixtures.events import wait_stamped
from tests.fixtures.factories import KeyFactory, bearer, create_customer
from tests.fixtures.receiver import Receiver, answering, register_endpoint, running_receiver

pytestmark = pytest.mark.usefixtures("allow_local_targets")

ENDPOINTS = "/v1/webhooks/endpoints"
DELIVERIES = "/v1/webhooks/deliveries"
REPLAY = "/v1/webhooks/replay"


async def deliver(sender: httpx.AsyncClient) -> int:
    await wait_stamped()
    return await delivery.deliver_due(sender)


async def listed(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(DELIVERIES, params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def endpoint_health(client: httpx.AsyncClient, endpoint_id: str) -> dict[str, Any]:
    response = await client.get(f"{ENDPOINTS}/{endpoint_id}")
    assert response.status_code == 200, response.text
    health: dict[str, Any] = response.json()["health"]
    return health


async def feed_events(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    await wait_stamped()
    response = await client.get("/v1/events")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def delivery_count(endpoint_id: str) -> int:
    async with read_connection() as conn:
        query = (
            select(func.count())
            .select_from(deliveries)
            .where(deliveries.c.endpoint_id == uuid.UUID(endpoint_id))
        )
        return int((await conn.execute(query)).scalar_one())


# ------------------------------------------------------------------------------------------ the log


async def test_the_log_shows_each_attempt_without_secrets(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    endpoint = await register_endpoint(client, receiver)
    secret = endpoint["secret"].encode()
    receiver.answer = answering(500, body=b"echo " + secret + b" " + b"x" * 5000)
    customer = await create_customer(client)
    assert await deliver(sender) == 1

    (item,) = await listed(client)
    assert item["endpoint_id"] == endpoint["id"]
    assert item["customer_id"] == customer["id"]
    assert item["event_type"] == "customer.created"
    assert item["event_id"] == receiver.requests[0].webhook_id
    assert (item["status"], item["attempts"], item["last_status_code"]) == ("pending", 1, 500)
    assert item["last_error"] == "HTTP 500"
    assert item["next_attempt_at"] is not None  # the retry schedule's next step
    assert item["delivered_at"] is None
    (attempt,) = item["attempt_log"]
    assert set(attempt) == {
        "attempted_at",
        "outcome",
        "status_code",
        "latency_ms",
        "response_excerpt",
        "error",
    }
    assert (attempt["outcome"], attempt["status_code"], attempt["error"]) == (
        "http_error",
        500,
        "HTTP 500",
    )
    assert isinstance(attempt["latency_ms"], int)
    assert attempt["latency_ms"] >= 0
    excerpt = attempt["response_excerpt"]
    assert excerpt.startswith("echo [secret] xxx")
    assert endpoint["secret"] not in excerpt
    assert len(excerpt) <= 1024
    assert endpoint["secret"] not in json.dumps(await listed(client))

    one = await client.get(f"{DELIVERIES}/{item['id']}")
    assert one.status_code == 200, one.text
    assert one.json() == item
    assert "etag" not in one.headers

    health = await endpoint_health(client, endpoint["id"])
    assert health["attempts_24h"] == 1
    assert health["success_rate"] == 0.0
    assert health["last_error"] == "HTTP 500"
    assert health["failing_since"] is not None
    assert health["last_success_at"] is None
    assert health["backlog"] == 1


async def test_attempt_log_is_newest_first_and_succeeded_has_no_next_attempt(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    endpoint = await register_endpoint(client, receiver)
    receiver.answer = answering(503, body=b"busy")
    with time_machine.travel(clock.now(), tick=False) as traveller:
        await create_customer(client)
        assert await deliver(sender) == 1
        (pending,) = await listed(client)
        traveller.move_to(datetime.fromisoformat(pending["next_attempt_at"]))
        receiver.answer = answering(204)
        assert await deliver(sender) == 1
        (done,) = await listed(client)
        assert (done["status"], done["attempts"], done["next_attempt_at"]) == ("succeeded", 2, None)
        assert [a["outcome"] for a in done["attempt_log"]] == ["success", "http_error"]
        assert [a["status_code"] for a in done["attempt_log"]] == [204, 503]
        assert done["attempt_log"][0]["response_excerpt"] is None  # an empty body
        assert done["delivered_at"] == done["attempt_log"][0]["attempted_at"]
        health = await endpoint_health(client, endpoint["id"])
        assert health["success_rate"] == 0.5
        assert health["attempts_24h"] == 2
        assert health["failing_since"] is None
        assert health["last_success_at"] == done["delivered_at"]
        assert health["backlog"] == 0
        # A day later those attempts are out of the window; the stored fields stay.
        traveller.shift(timedelta(hours=24, seconds=1))
        later = await endpoint_health(client, endpoint["id"])
        assert (later["attempts_24h"], later["success_rate"]) == (0, None)
        assert later["last_success_at"] == health["last_success_at"]


async def test_filters_and_pages(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    async with running_receiver() as failing:
        failing.answer = answering(500)
        good = await register_endpoint(client, receiver, event_types=["customer.*"])
        bad = await register_endpoint(client, failing)
        await create_customer(client)
        await create_customer(client)
        assert await deliver(sender) == 4
    events = await feed_events(client)
    assert len(events) == 2

    everything = await listed(client)
    assert len(everything) == 4
    keys = [(d["created_at"], d["id"]) for d in everything]
    assert keys == sorted(keys, reverse=True)  # newest first
    by_good = await listed(client, endpoint_id=good["id"])
    assert {d["endpoint_id"] for d in by_good} == {good["id"]}
    assert {d["status"] for d in by_good} == {"succeeded"}
    assert len(by_good) == 2
    pending = await listed(client, status="pending")
    assert {d["endpoint_id"] for d in pending} == {bad["id"]}
    assert len(pending) == 2
    assert await listed(client, status="failed") == []
    of_event = await listed(client, event_id=events[0]["id"])
    assert {d["endpoint_id"] for d in of_event} == {good["id"], bad["id"]}
    assert {d["event_id"] for d in of_event} == {events[0]["id"]}
    assert await listed(client, endpoint_id=bad["id"], status="succeeded") == []
    assert await listed(client, event_id=str(uuid.uuid4())) == []

    first = await client.get(DELIVERIES, params={"limit": 3})
    assert first.json()["has_more"] is True
    rest = await client.get(DELIVERIES, params={"limit": 3, "cursor": first.json()["next_cursor"]})
    assert rest.json()["has_more"] is False
    paged = [d["id"] for d in first.json()["data"] + rest.json()["data"]]
    assert paged == [d["id"] for d in everything]

    # Endpoint lists show each endpoint's own health (one statement for the page).
    endpoints = (await client.get(ENDPOINTS)).json()["data"]
    health = {e["id"]: e["health"] for e in endpoints}
    assert (health[good["id"]]["success_rate"], health[good["id"]]["backlog"]) == (1.0, 0)
    assert (health[bad["id"]]["success_rate"], health[bad["id"]]["backlog"]) == (0.0, 2)
    assert health[bad["id"]]["last_error"] == "HTTP 500"


# ---------------------------------------------------------------------------------------- retry


async def test_retry_sends_a_failed_delivery_again_with_a_fresh_schedule(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    await register_endpoint(client, receiver)
    receiver.answer = answering(500)
    with time_machine.travel(clock.now(), tick=False) as traveller:
        await create_customer(client)
        for _ in range(delivery.MAX_ATTEMPTS):
            assert await deliver(sender) == 1
            (item,) = await listed(client)
            if item["status"] == "pending":
                traveller.move_to(datetime.fromisoformat(item["next_attempt_at"]))
        assert (item["status"], item["attempts"]) == ("failed", delivery.MAX_ATTEMPTS)
        assert await deliver(sender) == 0

        receiver.answer = answering(200)
        traveller.shift(timedelta(minutes=1))
        retried = await client.post(f"{DELIVERIES}/{item['id']}/retry")
        assert retried.status_code == 202, retried.text
        body = retried.json()
        assert (body["status"], body["attempts"], body["delivered_at"]) == ("pending", 0, None)
        assert datetime.fromisoformat(body["next_attempt_at"]) == clock.now()
        assert len(body["attempt_log"]) == delivery.MAX_ATTEMPTS  # earlier attempts are kept
        assert await deliver(sender) == 1

    (done,) = await listed(client)
    assert (done["status"], done["attempts"]) == ("succeeded", 1)
    assert done["attempt_log"][0]["outcome"] == "success"
    assert len(receiver.requests) == delivery.MAX_ATTEMPTS + 1
    assert len({r.webhook_id for r in receiver.requests}) == 1  # the same webhook-id again
    assert receiver.requests[-1].verified


async def test_retry_of_a_succeeded_or_pending_delivery(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    await register_endpoint(client, receiver)
    await create_customer(client)
    assert await deliver(sender) == 1
    (item,) = await listed(client)
    assert item["status"] == "succeeded"
    again = await client.post(f"{DELIVERIES}/{item['id']}/retry")
    assert again.json()["status"] == "pending"
    assert await deliver(sender) == 1
    assert [r.webhook_id for r in receiver.delivered()] == [item["event_id"]] * 2

    receiver.answer = answering(500)
    again = await client.post(f"{DELIVERIES}/{item['id']}/retry")
    assert await deliver(sender) == 1
    (pending,) = await listed(client)
    assert (pending["status"], pending["attempts"]) == ("pending", 1)
    assert datetime.fromisoformat(pending["next_attempt_at"]) > clock.now()
    moved = await client.post(f"{DELIVERIES}/{item['id']}/retry")
    assert moved.status_code == 202, moved.text
    assert (moved.json()["status"], moved.json()["attempts"]) == ("pending", 1)  # count kept
    assert datetime.fromisoformat(moved.json()["next_attempt_at"]) <= clock.now()
    assert await deliver(sender) == 1
    assert len(receiver.requests) == 4


async def test_retry_refusals(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    endpoint = await register_endpoint(client, receiver)
    ping = await client.post(f"{ENDPOINTS}/{endpoint['id']}/test")
    assert ping.status_code == 200, ping.text
    (test_delivery,) = await listed(client)
    assert test_delivery["event_type"] == "webhook.test"
    assert_problem(
        await client.post(f"{DELIVERIES}/{test_delivery['id']}/retry"),
        409,
        "webhook_event_unavailable",
    )
    receiver.answer = answering(500)
    await create_customer(client)
    assert await deliver(sender) == 1
    (pending,) = await listed(client, status="pending")
    assert (await client.delete(f"{ENDPOINTS}/{endpoint['id']}")).status_code == 204
    (cancelled,) = await listed(client, status="cancelled")
    assert cancelled["id"] == pending["id"]
    assert cancelled["next_attempt_at"] is None
    for item in (cancelled, test_delivery):  # the log of a removed endpoint is kept
        path = f"{DELIVERIES}/{item['id']}/retry"
        assert_problem(await client.post(path), 409, "webhook_endpoint_removed")
    missing = f"{DELIVERIES}/{uuid.uuid4()}"
    assert_problem(await client.get(missing), 404, "webhook_delivery_not_found")
    assert_problem(await client.post(f"{missing}/retry"), 404, "webhook_delivery_not_found")


# --------------------------------------------------------------------------------------- replay


async def test_replay_by_ids_is_idempotent(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    endpoint = await register_endpoint(client, receiver, event_types=["customer.*"])
    for _ in range(3):
        await create_customer(client)
    assert await deliver(sender) == 3
    events = await feed_events(client)
    chosen = [events[0]["id"], events[2]["id"]]

    body = {"endpoint_id": endpoint["id"], "event_ids": chosen}
    first = await client.post(REPLAY, json=body)
    assert first.status_code == 202, first.text
    assert first.json() == {"queued": 2, "new": 0, "requeued": 2}
    second = await client.post(REPLAY, json={**body, "event_ids": [*chosen, chosen[0]]})
    assert second.json() == {"queued": 2, "new": 0, "requeued": 2}
    assert await delivery_count(endpoint["id"]) == 3
    pending = await listed(client, status="pending")
    assert sorted(d["event_id"] for d in pending) == sorted(chosen)
    assert {d["attempts"] for d in pending} == {0}

    assert await deliver(sender) == 2
    assert await deliver(sender) == 0
    sent = [r.webhook_id for r in receiver.delivered()]
    assert len(sent) == 5
    assert sorted(sent[3:]) == sorted(chosen)  # each replayed event once

    # An event id that is not in the log, or that the filter excludes, queues nothing.
    other = await client.post(
        REPLAY, json={"endpoint_id": endpoint["id"], "event_ids": [str(uuid.uuid4())]}
    )
    assert other.json() == {"queued": 0, "new": 0, "requeued": 0}


async def test_replayed_and_retried_events_keep_their_customers_order(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    endpoint = await register_endpoint(client, receiver)
    customer = await create_customer(client, city="Shanghai")
    changed = await client.patch(f"/v1/customers/{customer['id']}", json={"city": "Hangzhou"})
    assert changed.status_code == 200, changed.text
    assert await deliver(sender) == 1
    assert await deliver(sender) == 1
    created, updated = (e["id"] for e in await feed_events(client))

    replayed = await client.post(
        REPLAY, json={"endpoint_id": endpoint["id"], "event_ids": [updated, created]}
    )
    assert replayed.json() == {"queued": 2, "new": 0, "requeued": 2}
    assert await deliver(sender) == 1  # one at a time, in the customer's order
    assert await deliver(sender) == 1
    assert await deliver(sender) == 0
    assert [r.webhook_id for r in receiver.delivered()] == [created, updated] * 2

    # A retried earlier event goes before a later one still waiting.
    receiver.answer = answering(500)
    (of_updated,) = await listed(client, event_id=updated)
    (of_created,) = await listed(client, event_id=created)
    await client.post(f"{DELIVERIES}/{of_updated['id']}/retry")
    await client.post(f"{DELIVERIES}/{of_created['id']}/retry")
    assert await deliver(sender) == 1
    assert receiver.requests[-1].webhook_id == created
    assert await deliver(sender) == 0  # the earlier one waits for its next attempt; so does this


async def test_replay_by_range_to_a_new_endpoint(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    start = clock.now() - timedelta(seconds=1)
    for _ in range(3):
        await create_customer(client)
    events = await feed_events(client)
    end = clock.now() + timedelta(seconds=1)
    # Registered after the events: dispatch gives it none, a replay gives it all three.
    endpoint = await register_endpoint(client, receiver)
    assert await deliver(sender) == 0
    body = {"endpoint_id": endpoint["id"], "from": start.isoformat(), "to": end.isoformat()}
    first = await client.post(REPLAY, json=body)
    assert first.json() == {"queued": 3, "new": 3, "requeued": 0}
    again = await client.post(REPLAY, json=body)
    assert again.json() == {"queued": 3, "new": 0, "requeued": 3}
    assert (await endpoint_health(client, endpoint["id"]))["backlog"] == 3
    assert await deliver(sender) == 3
    assert sorted(r.webhook_id for r in receiver.delivered()) == sorted(e["id"] for e in events)

    # [from, to): an event exactly at `to` is left out; one exactly at `from` is in.
    occurred = datetime.fromisoformat(events[1]["occurred_at"])
    edge = {"endpoint_id": endpoint["id"], "from": start.isoformat()}
    upto = await client.post(REPLAY, json={**edge, "to": occurred.isoformat()})
    assert upto.json()["queued"] == 1
    since = {"endpoint_id": endpoint["id"], "from": occurred.isoformat(), "to": end.isoformat()}
    assert (await client.post(REPLAY, json=since)).json()["queued"] == 2


async def test_replay_follows_the_endpoints_filter(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    customers_only = await register_endpoint(client, receiver, event_types=["customer.*"])
    orders_only = await register_endpoint(client, receiver, event_types=["order.*"])
    await create_customer(client)
    assert await deliver(sender) == 1
    events = await feed_events(client)
    ids = [e["id"] for e in events]
    refused = await client.post(REPLAY, json={"endpoint_id": orders_only["id"], "event_ids": ids})
    assert refused.json() == {"queued": 0, "new": 0, "requeued": 0}
    start, end = clock.now() - timedelta(days=1), clock.now()
    by_range = await client.post(
        REPLAY,
        json={"endpoint_id": orders_only["id"], "from": start.isoformat(), "to": end.isoformat()},
    )
    assert by_range.json()["queued"] == 0
    assert await delivery_count(orders_only["id"]) == 0
    accepted = await client.post(
        REPLAY, json={"endpoint_id": customers_only["id"], "event_ids": ids}
    )
    assert accepted.json() == {"queued": 1, "new": 0, "requeued": 1}


async def test_replay_refusals(
    client: httpx.AsyncClient,
    receiver: Receiver,
    sender: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = await register_endpoint(client, receiver)
    for _ in range(3):
        await create_customer(client)
    await wait_stamped()
    start, end = clock.now() - timedelta(hours=1), clock.now() + timedelta(seconds=1)
    body = {"endpoint_id": endpoint["id"], "from": start.isoformat(), "to": end.isoformat()}
    monkeypatch.setattr(service, "MAX_REPLAY_EVENTS", 2)
    problem = assert_problem(await client.post(REPLAY, json=body), 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["body.to"]
    assert await delivery_count(endpoint["id"]) == 0  # nothing was queued
    monkeypatch.undo()

    gone = await register_endpoint(client, receiver)
    assert (await client.delete(f"{ENDPOINTS}/{gone['id']}")).status_code == 204
    for endpoint_id in (gone["id"], str(uuid.uuid4())):
        problem = assert_problem(
            await client.post(REPLAY, json={**body, "endpoint_id": endpoint_id}),
            422,
            "validation_failed",
        )
        assert [e["field"] for e in problem["errors"]] == ["body.endpoint_id"]


# ------------------------------------------------------------------------------------ test ping


async def test_ping_arrives_signed_and_is_logged(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register_endpoint(client, receiver, event_types=["order.*"], enabled=False)
    response = await client.post(f"{ENDPOINTS}/{endpoint['id']}/test")
    assert response.status_code == 200, response.text
    attempt = response.json()
    assert (attempt["outcome"], attempt["status_code"], attempt["error"]) == ("success", 200, None)
    assert attempt["response_excerpt"] == "ok"
    (request,) = receiver.requests
    assert request.verified  # standardwebhooks checked the signature
    ping = request.json
    assert ping["type"] == "webhook.test"
    assert ping["customer_id"] is None
    assert ping["data"] == {"endpoint_id": endpoint["id"], "message": service.TEST_MESSAGE}
    assert request.webhook_id == ping["id"]
    # Not an event of the log; a delivery of the log.
    assert [e["type"] for e in await feed_events(client)] == []
    (logged,) = await listed(client, endpoint_id=endpoint["id"])
    assert (logged["event_id"], logged["event_type"]) == (ping["id"], "webhook.test")
    assert (logged["status"], logged["attempts"], logged["next_attempt_at"]) == (
        "succeeded",
        1,
        None,
    )
    assert logged["attempt_log"] == [attempt]
    health = await endpoint_health(client, endpoint["id"])
    assert (health["attempts_24h"], health["success_rate"], health["backlog"]) == (1, 1.0, 0)
    assert health["last_success_at"] == attempt["attempted_at"]

    receiver.answer = answering(418, body=b"I'm a teapot")
    failed = (await client.post(f"{ENDPOINTS}/{endpoint['id']}/test")).json()
    assert (failed["outcome"], failed["status_code"]) == ("http_error", 418)
    assert failed["response_excerpt"] == "I'm a teapot"
    health = await endpoint_health(client, endpoint["id"])
    assert (health["attempts_24h"], health["success_rate"]) == (2, 0.5)
    assert health["last_error"] == "HTTP 418"
    assert health["failing_since"] == failed["attempted_at"]
    assert len(await listed(client, status="failed")) == 1

    missing = f"{ENDPOINTS}/{uuid.uuid4()}/test"
    assert_problem(await client.post(missing), 404, "webhook_endpoint_not_found")


async def test_ping_to_a_refused_target_is_an_attempt(
    client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = await register_endpoint(client, receiver)
    # The network is no longer allowed (say the configuration changed): the guard refuses.
    monkeypatch.delenv("KEHU_WEBHOOK_ALLOW_NETS")
    get_settings.cache_clear()
    response = await client.post(f"{ENDPOINTS}/{endpoint['id']}/test")
    assert response.status_code == 200, response.text
    attempt = response.json()
    assert (attempt["outcome"], attempt["status_code"]) == ("refused", None)
    assert "127.0.0.1" in attempt["error"]
    assert receiver.requests == []
    (logged,) = await listed(client)
    assert logged["status"] == "failed"


# ------------------------------------------------------------------------------ scopes and input


async def test_scopes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, make_key: KeyFactory, receiver: Receiver
) -> None:
    endpoint = await register_endpoint(client, receiver)
    await client.post(f"{ENDPOINTS}/{endpoint['id']}/test")
    (item,) = await listed(client)
    other = bearer(await make_key("customers:write", "events:read"))
    manager = bearer(await make_key("webhooks:manage"))
    replay = {"endpoint_id": endpoint["id"], "event_ids": [str(uuid.uuid4())]}
    calls = [
        ("GET", DELIVERIES, None),
        ("GET", f"{DELIVERIES}/{item['id']}", None),
        ("POST", f"{DELIVERIES}/{item['id']}/retry", None),
        ("POST", REPLAY, replay),
        ("POST", f"{ENDPOINTS}/{endpoint['id']}/test", None),
    ]
    for method, path, body in calls:
        refused = await anon.request(method, path, json=body, headers=other)
        assert_problem(refused, 403, "missing_scope")
    assert (await anon.get(DELIVERIES, headers=manager)).status_code == 200
    assert (await anon.post(REPLAY, json=replay, headers=manager)).status_code == 202
    ping = await anon.post(f"{ENDPOINTS}/{endpoint['id']}/test", headers=manager)
    assert ping.json()["outcome"] == "success"


@pytest.mark.parametrize(
    ("method", "path", "fields"),
    [
        ("GET", f"{DELIVERIES}/not-a-uuid", ["path.delivery_id"]),
        ("POST", f"{DELIVERIES}/not-a-uuid/retry", ["path.delivery_id"]),
        ("POST", f"{ENDPOINTS}/12345/test", ["path.endpoint_id"]),
        ("GET", f"{DELIVERIES}?endpoint_id=nope", ["query.endpoint_id"]),
        ("GET", f"{DELIVERIES}?event_id=%00", ["query.event_id"]),
        ("GET", f"{DELIVERIES}?status=delivered", ["query.status"]),
        ("GET", f"{DELIVERIES}?limit=101", ["query.limit"]),
    ],
)
async def test_hostile_parameters(
    client: httpx.AsyncClient, method: str, path: str, fields: list[str]
) -> None:
    problem = assert_problem(await client.request(method, path), 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == fields, problem


_ID = "01936f20-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
_NOW = "2025-11-25T00:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint_id": "nope", "event_ids": [_ID]}, "body.endpoint_id"),
        ({"endpoint_id": _ID, "event_ids": ["nope"]}, "body.event_ids.0"),
        ({"endpoint_id": _ID, "event_ids": []}, "body.event_ids"),
        (
            {"endpoint_id": _ID, "event_ids": [str(uuid.uuid4()) for _ in range(1001)]},
            "body.event_ids",
        ),
        ({"endpoint_id": _ID, "from": "2025-10-01T00:00:00Z", "to": _NOW}, "body.to"),
        ({"endpoint_id": _ID, "event_ids": [_ID], "from": _NOW, "to": _NOW}, "body.event_ids"),
        ({"endpoint_id": _ID}, "body.event_ids"),
        ({"endpoint_id": _ID, "from": _NOW}, "body.to"),
        ({"endpoint_id": _ID, "to": _NOW}, "body.from"),
        ({"endpoint_id": _ID, "from": _NOW, "to": _NOW}, "body.to"),
        ({"endpoint_id": _ID, "from": "2025-11-24T00:00:00", "to": _NOW}, "body.from"),
        ({"endpoint_id": _ID, "from": "0001-01-01T00:00:00+01:00", "to": _NOW}, "body.from"),
        ({"endpoint_id": _ID, "from": "yesterday", "to": _NOW}, "body.from"),
        ({"endpoint_id": _ID, "event_ids": [_ID], "extra": 1}, "body.extra"),
    ],
)
async def test_hostile_replays(client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(await client.post(REPLAY, json=body), 422, "validation_failed")
    assert field in [e["field"] for e in problem["errors"]], problem


# -------------------------------------------------------------------------------------- GraphQL

DELIVERY_FIELDS = """id webhookDeliveryId endpointId eventId eventType status attempts nextAttemptAt
  attemptLog { outcome statusCode latencyMs responseExcerpt error }"""


async def test_graphql(
    client: httpx.AsyncClient, receiver: Receiver, sender: httpx.AsyncClient
) -> None:
    endpoint = await register_endpoint(client, receiver, event_types=["customer.*"])
    await create_customer(client)
    assert await deliver(sender) == 1

    pinged = await gql(
        client,
        "mutation($id: ID!) { testWebhookEndpoint(id: $id) "
        "{ attempt { outcome statusCode latencyMs } } }",
        {"id": endpoint["id"]},
    )
    assert "errors" not in pinged, pinged
    assert pinged["data"]["testWebhookEndpoint"]["attempt"]["outcome"] == "success"

    page = await gql(
        client,
        f"""query($filter: WebhookDeliveryFilter) {{
          webhookDeliveries(first: 1, filter: $filter) {{
            edges {{ cursor node {{ {DELIVERY_FIELDS} }} }} pageInfo {{ hasNextPage }} }} }}""",
        {"filter": {"endpointId": endpoint["id"], "status": "succeeded"}},
    )
    assert "errors" not in page, page
    connection = page["data"]["webhookDeliveries"]
    assert connection["pageInfo"]["hasNextPage"] is True
    (edge,) = connection["edges"]
    assert edge["node"]["eventType"] == "webhook.test"  # newest first
    older = await gql(
        client,
        f"""query($after: String) {{ webhookDeliveries(first: 5, after: $after) {{
              edges {{ node {{ {DELIVERY_FIELDS} }} }} }} }}""",
        {"after": edge["cursor"]},
    )
    (node,) = [e["node"] for e in older["data"]["webhookDeliveries"]["edges"]]
    assert (node["eventType"], node["status"], node["attempts"]) == (
        "customer.created",
        "succeeded",
        1,
    )
    assert node["attemptLog"][0]["statusCode"] == 200

    by_node = await gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on WebhookDelivery { eventId } } }",
        {"id": node["id"]},
    )
    assert by_node["data"]["node"] == {"eventId": node["eventId"]}

    retried = await gql(
        client,
        "mutation($id: ID!) { retryWebhookDelivery(id: $id) "
        "{ webhookDelivery { status attempts } } }",
        {"id": node["id"]},
    )
    assert retried["data"]["retryWebhookDelivery"]["webhookDelivery"] == {
        "status": "pending",
        "attempts": 0,
    }

    replay = "mutation($input: WebhookReplayInput!) { replayWebhookEvents(input: $input) { queued new requeued } }"
    replayed = await gql(
        client, replay, {"input": {"endpointId": endpoint["id"], "eventIds": [node["eventId"]]}}
    )
    assert replayed["data"]["replayWebhookEvents"] == {"queued": 1, "new": 0, "requeued": 1}
    start, end = clock.now() - timedelta(hours=1), clock.now()
    by_range = await gql(
        client,
        replay,
        {"input": {"endpointId": endpoint["id"], "from": start.isoformat(), "to": end.isoformat()}},
    )
    assert by_range["data"]["replayWebhookEvents"]["queued"] == 1
    both = await gql(
        client,
        replay,
        {
            "input": {
                "endpointId": endpoint["id"],
                "eventIds": [node["eventId"]],
                "from": start.isoformat(),
                "to": end.isoformat(),
            }
        },
    )
    assert error_codes(both) == ["validation_failed"]
    too_long = await gql(
        client,
        replay,
        {
            "input": {
                "endpointId": endpoint["id"],
                "from": (end - timedelta(days=32)).isoformat(),
                "to": end.isoformat(),
            }
        },
    )
    assert error_codes(too_long) == ["validation_failed"]

    health = await gql(
        client,
        "query($id: ID!) { webhookEndpoint(id: $id) "
        "{ health { successRate attempts24h lastSuccessAt lastError failingSince backlog } } }",
        {"id": endpoint["id"]},
    )
    assert health["data"]["webhookEndpoint"]["health"] == {
        "successRate": 1.0,
        "attempts24h": 2,
        "lastSuccessAt": health["data"]["webhookEndpoint"]["health"]["lastSuccessAt"],
        "lastError": None,
        "failingSince": None,
        "backlog": 1,
    }


async def test_graphql_scopes_and_ids(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, make_key: KeyFactory
) -> None:
    other = bearer(await make_key("customers:write"))
    refused = await gql(anon, "{ webhookDeliveries { edges { cursor } } }", headers=other)
    assert error_codes(refused) == ["missing_scope"]
    bad = await gql(
        client, 'mutation { retryWebhookDelivery(id: "nope") { webhookDelivery { id } } }'
    )
    assert error_codes(bad) == ["invalid_id"]
    missing = await gql(
        client,
        "mutation($id: ID!) { testWebhookEndpoint(id: $id) { attempt { outcome } } }",
        {"id": str(uuid.uuid4())},
    )
    assert error_codes(missing) == ["webhook_endpoint_not_found"]
