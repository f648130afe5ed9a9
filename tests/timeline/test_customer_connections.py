"""``Customer.interactions``, ``Customer.cases`` and ``Customer.feedback``: the first page of every
customer in one statement each, and ``after`` paging on through the lists' own cursors."""

from datetime import UTC, datetime, timedelta

import httpx2 as httpx

from tests.fixtures.api import count_statements, gql
from tests.fixtures.factories import (
    KeyFactory,
    bearer,
    create_customer,
    create_interaction,
    open_case,
    submit_feedback,
)

MANY = """
query($first: Int!) {
  customers(first: $first) { edges { node {
    customerId
    interactions(first: 2) { edges { node { interactionId subject } } pageInfo { hasNextPage } }
    cases(first: 2) { edges { node { caseId subject } } pageInfo { hasNextPage } }
    feedback(first: 2) { edges { node { feedbackId score } } pageInfo { hasNextPage } }
  } } }
}
"""

START = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


async def test_first_pages_of_many_customers_in_constant_statements(
    client: httpx.AsyncClient,
) -> None:
    expected: dict[str, dict[str, list[str]]] = {}
    for i in range(12):
        customer = await create_customer(client, email=f"c{i}@example.com", phone=None)
        cid = customer["id"]
        calls = [
            await create_interaction(
                client, cid, occurred_at=(START + timedelta(hours=n)).isoformat()
            )
            for n in range(i % 4)
        ]
        cases = [await open_case(client, cid) for _ in range(i % 3)]
        answers = [
            await submit_feedback(
                client, cid, score=n, submitted_at=(START + timedelta(hours=n)).isoformat()
            )
            for n in range(i % 5)
        ]
        expected[cid] = {
            "interactions": [c["id"] for c in reversed(calls)][:2],
            # opened in this order within the test, so newest first is the reverse
            "cases": [c["id"] for c in reversed(cases)][:2],
            "feedback": [a["id"] for a in reversed(answers)][:2],
        }
    counts = {}
    for first in (3, 12):
        await gql(client, "{ __typename }")
        with count_statements() as statements:
            body = await gql(client, MANY, {"first": first})
        assert "errors" not in body, body
        edges = body["data"]["customers"]["edges"]
        assert len(edges) == first
        for edge in edges:
            node = edge["node"]
            want = expected[node["customerId"]]
            got = {
                "interactions": [e["node"]["interactionId"] for e in node["interactions"]["edges"]],
                "cases": [e["node"]["caseId"] for e in node["cases"]["edges"]],
                "feedback": [e["node"]["feedbackId"] for e in node["feedback"]["edges"]],
            }
            assert got == want, node["customerId"]
        counts[first] = len(statements)
    print(f"statements for customers with interactions, cases and feedback: {counts}")
    # the customers page, then one statement per connection whatever the number of customers
    assert counts[3] == counts[12] <= 5, counts


async def test_after_pages_on_through_the_list(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    calls = [
        await create_interaction(
            client, customer["id"], occurred_at=(START + timedelta(minutes=n)).isoformat()
        )
        for n in range(7)
    ]
    await create_interaction(client, other["id"])
    query = """
    query($id: ID!, $after: String) { customer(id: $id) {
      interactions(first: 3, after: $after) {
        edges { cursor node { interactionId } } pageInfo { hasNextPage endCursor }
    } } }
    """
    seen: list[str] = []
    after = None
    while True:
        body = await gql(client, query, {"id": customer["id"], "after": after})
        assert "errors" not in body, body
        connection = body["data"]["customer"]["interactions"]
        seen += [e["node"]["interactionId"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == [c["id"] for c in reversed(calls)]

    # an edge's cursor continues right after that edge, as in the lists
    first_page = await gql(client, query, {"id": customer["id"], "after": None})
    second_edge = first_page["data"]["customer"]["interactions"]["edges"][1]
    body = await gql(client, query, {"id": customer["id"], "after": second_edge["cursor"]})
    resumed = [
        e["node"]["interactionId"] for e in body["data"]["customer"]["interactions"]["edges"]
    ]
    assert resumed == seen[2:5]


async def test_scopes(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    customer = await create_customer(client)
    await open_case(client, customer["id"])
    profile_only = bearer(await make_key("customers:read"))
    body = await gql(
        client,
        "query($id: ID!) { customer(id: $id) { cases(first: 5) { edges { node { caseId } } } } }",
        {"id": customer["id"]},
        headers=profile_only,
    )
    assert body["errors"][0]["extensions"]["code"] == "missing_scope"
    with_cases = bearer(await make_key("customers:read", "cases:read"))
    body = await gql(
        client,
        "query($id: ID!) { customer(id: $id) { cases(first: 5) { edges { node { caseId } } } } }",
        {"id": customer["id"]},
        headers=with_cases,
    )
    assert len(body["data"]["customer"]["cases"]["edges"]) == 1
