import uuid
from datetime import timedelta
from typing import Any

import httpx2 as httpx

from tests.fixtures.api import assert_problem, count_statements, gql
from tests.fixtures.factories import KeyFactory, bearer, create_customer
from tests.timeline.conftest import BASE, Written, newest_first, write_entry

KINDS = ("interaction", "case", "case_transition", "feedback")


async def read_all(
    client: httpx.AsyncClient, customer_id: str, *, limit: int, **params: Any
) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/v1/customers/{customer_id}/timeline", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"]) <= limit
        seen += [(e["kind"], e["id"]) for e in body["data"]]
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            return seen
        cursor = body["next_cursor"]


async def mixed_history(customer_id: uuid.UUID) -> list[Written]:
    """Every kind, with ties: several entries share a time, across kinds and within one."""
    written: list[Written] = []
    for i in range(12):
        at = BASE + timedelta(minutes=10 * (i // 3))  # three entries per instant
        kind = KINDS[i % len(KINDS)]
        written.append(await write_entry(customer_id, kind, at))
    written.append(await write_entry(customer_id, "interaction", BASE + timedelta(minutes=10)))
    return written


def with_openings(written: list[Written]) -> list[Written]:
    """A case_transition entry's case is opened an hour before: an entry of kind case too (its
    id is not known here), so tests that read every kind compare only what they wrote."""
    return written


async def test_newest_first_across_kinds_in_every_page_size(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    written = await mixed_history(uuid.UUID(customer["id"]))
    # Without the case openings the case_transition rows bring along, the order is exactly known.
    wanted = list(written)
    expected = newest_first(wanted)
    for limit in (1, 2, 3, 5, 100):
        seen = await read_all(client, customer["id"], limit=limit)
        mine = [entry for entry in seen if entry in set(expected)]
        assert mine == expected, limit
        # The openings are the only other entries, each once.
        others = [entry for entry in seen if entry not in set(expected)]
        assert [kind for kind, _ in others] == ["case"] * 3
        assert len(set(seen)) == len(seen)


async def test_entries_carry_a_summary(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    written = await write_entry(uuid.UUID(customer["id"]), "interaction", BASE)
    response = await client.get(f"/v1/customers/{customer['id']}/timeline")
    assert response.status_code == 200
    [entry] = response.json()["data"]
    assert entry["id"] == str(written.id)
    assert entry["kind"] == "interaction"
    assert entry["at"].startswith("2026-11-02T09:00:00")
    assert entry["data"]["channel"] == "phone"
    assert entry["data"]["subject"] == f"call {written.id}"
    assert "body" not in entry["data"]


async def test_the_cursor_holds_while_entries_arrive(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    customer_id = uuid.UUID(customer["id"])
    written = await mixed_history(customer_id)
    first = await client.get(
        f"/v1/customers/{customer['id']}/timeline",
        params={"limit": 4, "kinds": "interaction,case_transition,feedback"},
    )
    page = first.json()
    read = [(e["kind"], e["id"]) for e in page["data"]]
    last = page["data"][-1]
    last_at = next(w.at for w in written if str(w.id) == last["id"])

    # While the client reads page one: newer entries of every kind, entries at exactly the
    # position's time (kinds sorting before and after its kind), and older, back-dated ones.
    arrived = []
    for kind in ("interaction", "case_transition", "feedback"):
        arrived.append(await write_entry(customer_id, kind, BASE + timedelta(days=1)))
        arrived.append(await write_entry(customer_id, kind, last_at))
        arrived.append(await write_entry(customer_id, kind, BASE - timedelta(days=1)))

    rest = await read_all(
        client,
        customer["id"],
        limit=3,
        kinds="interaction,case_transition,feedback",
        cursor=page["next_cursor"],
    )
    everything = newest_first([w for w in [*written, *arrived] if w.kind != "case"])
    position = everything.index((last["kind"], last["id"]))
    # Exactly what sorts after the position now, whenever it was written; nothing read twice.
    assert rest == everything[position + 1 :]
    assert not set(rest) & set(read)


async def test_kinds_filter(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    written = await mixed_history(uuid.UUID(customer["id"]))
    seen = await read_all(client, customer["id"], limit=50, kinds=["feedback", "interaction"])
    assert seen == newest_first([w for w in written if w.kind in ("feedback", "interaction")])
    comma = await read_all(client, customer["id"], limit=50, kinds="feedback,interaction")
    assert comma == seen

    bad = await client.get(
        f"/v1/customers/{customer['id']}/timeline", params={"kinds": "interaction,orders"}
    )
    body = assert_problem(bad, 422, "unknown_timeline_kind")
    assert "orders" in body["detail"]


async def test_scopes_decide_the_kinds(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    customer = await create_customer(client)
    written = await mixed_history(uuid.UUID(customer["id"]))
    url = f"/v1/customers/{customer['id']}/timeline"

    interactions_only = bearer(await make_key("customers:read", "interactions:read"))
    response = await client.get(url, headers=interactions_only, params={"limit": 100})
    kinds = {e["kind"] for e in response.json()["data"]}
    assert kinds == {"interaction", "feedback"}  # feedback is read with interactions:read
    denied = await client.get(url, headers=interactions_only, params={"kinds": "case"})
    assert_problem(denied, 403, "missing_scope")

    cases_only = bearer(await make_key("customers:read", "cases:read"))
    response = await client.get(url, headers=cases_only, params={"limit": 100})
    assert {e["kind"] for e in response.json()["data"]} == {"case", "case_transition"}

    profile_only = bearer(await make_key("customers:read"))
    response = await client.get(url, headers=profile_only)
    assert response.json()["data"] == []
    assert len(written) > 0

    no_customers = bearer(await make_key("interactions:read", "cases:read"))
    assert_problem(await client.get(url, headers=no_customers), 403, "missing_scope")


async def test_bad_requests(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    url = f"/v1/customers/{customer['id']}/timeline"
    assert_problem(await client.get(url, params={"cursor": "abc.def"}), 400, "invalid_cursor")
    # A valid cursor of another list is not a timeline position.
    await create_customer(client)
    other = await client.get("/v1/customers", params={"limit": 1})
    assert_problem(
        await client.get(url, params={"cursor": other.json()["next_cursor"]}), 400, "invalid_cursor"
    )
    unknown = f"/v1/customers/{uuid.uuid4()}/timeline"
    assert_problem(await client.get(unknown), 404, "customer_not_found")


TIMELINES = """
query($first: Int!) {
  customers(first: $first) {
    edges { node { id timeline(first: 3) {
      edges { cursor node { kind id at data } }
      pageInfo { hasNextPage endCursor }
    } } }
  }
}
"""


async def test_graphql_timelines_of_many_customers_in_constant_statements(
    client: httpx.AsyncClient,
) -> None:
    expected: dict[str, list[tuple[str, str]]] = {}
    for i in range(50):
        customer = await create_customer(client, email=f"t{i}@example.com", phone=None)
        written = [
            await write_entry(uuid.UUID(customer["id"]), kind, BASE + timedelta(minutes=i + n))
            for n, kind in enumerate(("interaction", "feedback", "interaction", "feedback"))
        ]
        expected[customer["customerId"] if "customerId" in customer else customer["id"]] = (
            newest_first(written)
        )
    counts = {}
    for first in (5, 50):
        await gql(client, "{ __typename }")  # the API key is resolved (and cached) uncounted
        with count_statements() as statements:
            body = await gql(client, TIMELINES, {"first": first})
        assert "errors" not in body, body
        edges = body["data"]["customers"]["edges"]
        assert len(edges) == first
        for edge in edges:
            timeline = edge["node"]["timeline"]
            got = [(e["node"]["kind"], e["node"]["id"]) for e in timeline["edges"]]
            customer_id = edge["node"]["id"]
            raw = await _raw_id(client, customer_id)
            assert got == expected[raw][:3]
            assert timeline["pageInfo"]["hasNextPage"] is True
        counts[first] = len(statements)
    print(f"statements for customers with their timelines: {counts}")
    assert counts[5] == counts[50] <= 3, counts


async def _raw_id(client: httpx.AsyncClient, global_id: str) -> str:
    body = await gql(
        client, "query($id: ID!) { customer(id: $id) { customerId } }", {"id": global_id}
    )
    raw: str = body["data"]["customer"]["customerId"]
    return raw


async def test_graphql_pages_on_with_the_cursor(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    written = await mixed_history(uuid.UUID(customer["id"]))
    expected = newest_first([w for w in written if w.kind != "case"])
    query = """
    query($id: ID!, $after: String) { customer(id: $id) {
      timeline(first: 4, after: $after, kinds: ["interaction", "case_transition", "feedback"]) {
        edges { node { kind id } } pageInfo { hasNextPage endCursor }
      } } }
    """
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        body = await gql(client, query, {"id": customer["id"], "after": after})
        assert "errors" not in body, body
        timeline = body["data"]["customer"]["timeline"]
        seen += [(e["node"]["kind"], e["node"]["id"]) for e in timeline["edges"]]
        if not timeline["pageInfo"]["hasNextPage"]:
            break
        after = timeline["pageInfo"]["endCursor"]
    assert seen == expected
