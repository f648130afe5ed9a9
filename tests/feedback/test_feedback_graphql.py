"""Feedback over GraphQL: the Feedback node, feedback(id), feedbackList, submitFeedback; the same
service (and rules) as REST."""

import uuid

import httpx2 as httpx

from tests.fixtures.api import error_codes, gql
from tests.fixtures.factories import KeyFactory, bearer, create_customer, submit_feedback

FIELDS = "id feedbackId customerId kind score comment category channel agent surveyId submittedAt"
SUBMIT = f"""
mutation($input: FeedbackCreateInput!, $key: String) {{
  submitFeedback(input: $input, idempotencyKey: $key) {{ created replayed feedback {{ {FIELDS} }} }}
}}"""


async def test_submit_then_read_back(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    variables = {
        "input": {
            "customerId": customer["id"],
            "kind": "CES",
            "score": 6,
            "channel": "APP",
            "source": "app",
            "externalId": "g-1",
            "submittedAt": "2026-02-01T10:00:00Z",
        }
    }
    body = await gql(client, SUBMIT, variables)
    assert "errors" not in body, body
    payload = body["data"]["submitFeedback"]
    assert (payload["created"], payload["replayed"]) == (True, False)
    answer = payload["feedback"]
    assert (answer["kind"], answer["score"], answer["channel"]) == ("CES", 6, "APP")
    rest = (await client.get(f"/v1/feedback/{answer['feedbackId']}")).json()
    assert rest["submitted_at"] == "2026-02-01T10:00:00Z"
    assert rest["kind"] == "ces"

    # The same (source, externalId) is the stored answer, not a second one.
    again = await gql(client, SUBMIT, variables)
    assert again["data"]["submitFeedback"]["created"] is False
    assert again["data"]["submitFeedback"]["feedback"]["feedbackId"] == answer["feedbackId"]

    read = await gql(
        client,
        f"query($id: ID!) {{ feedback(id: $id) {{ {FIELDS} }} }}",
        {"id": answer["id"]},
    )
    assert read["data"]["feedback"] == answer
    node = await gql(
        client,
        "query($id: ID!) { node(id: $id) { __typename ... on Feedback { score } } }",
        {"id": answer["id"]},
    )
    assert node["data"]["node"] == {"__typename": "Feedback", "score": 6}
    missing = await gql(
        client, "query($id: ID!) { feedback(id: $id) { id } }", {"id": str(uuid.uuid4())}
    )
    assert missing["data"]["feedback"] is None


async def test_idempotency_key_replays(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    variables = {"input": {"customerId": customer["id"], "kind": "NPS", "score": 3}, "key": "k1"}
    first = (await gql(client, SUBMIT, variables))["data"]["submitFeedback"]
    again = (await gql(client, SUBMIT, variables))["data"]["submitFeedback"]
    assert (again["replayed"], again["created"]) == (True, True)
    assert again["feedback"] == first["feedback"]
    listed = await gql(client, "{ feedbackList { edges { node { feedbackId } } } }")
    assert len(listed["data"]["feedbackList"]["edges"]) == 1


async def test_invalid_input_uses_the_rest_rules(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    off_scale = await gql(
        client, SUBMIT, {"input": {"customerId": customer["id"], "kind": "CSAT", "score": 9}}
    )
    assert error_codes(off_scale) == ["validation_failed"]
    [error] = off_scale["errors"][0]["extensions"]["errors"]
    assert error["field"] == "input.score"
    assert "1 to 5" in error["message"]
    unknown = await gql(
        client, SUBMIT, {"input": {"customerId": str(uuid.uuid4()), "kind": "NPS", "score": 9}}
    )
    assert error_codes(unknown) == ["customer_not_found"]


async def test_feedback_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    made = [
        await submit_feedback(client, customer["id"], kind=kind, score=score)
        for kind, score in (("nps", 10), ("csat", 5), ("nps", 2))
    ]
    query = """
    query($first: Int!, $after: String, $filter: FeedbackFilter, $sort: FeedbackSort) {
      feedbackList(first: $first, after: $after, filter: $filter, sort: $sort) {
        edges { cursor node { feedbackId } } pageInfo { hasNextPage endCursor }
      }
    }"""
    nps = await gql(client, query, {"first": 10, "filter": {"kind": "NPS"}})
    assert [e["node"]["feedbackId"] for e in nps["data"]["feedbackList"]["edges"]] == [
        made[2]["id"],
        made[0]["id"],
    ]
    page = await gql(client, query, {"first": 2, "sort": "submitted_at"})
    connection = page["data"]["feedbackList"]
    assert connection["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        client,
        query,
        {"first": 2, "sort": "submitted_at", "after": connection["pageInfo"]["endCursor"]},
    )
    seen = [e["node"]["feedbackId"] for e in connection["edges"]] + [
        e["node"]["feedbackId"] for e in rest["data"]["feedbackList"]["edges"]
    ]
    assert seen == [f["id"] for f in made]
    too_many = await gql(client, query, {"first": 101})
    assert error_codes(too_many) == ["validation_failed"]


async def test_scopes(client: httpx.AsyncClient, make_key: KeyFactory) -> None:
    customer = await create_customer(client)
    await submit_feedback(client, customer["id"])
    reader = bearer(await make_key("interactions:read"))
    other = bearer(await make_key("cases:read"))
    variables = {"input": {"customerId": customer["id"], "kind": "NPS", "score": 9}}
    refused = await gql(client, SUBMIT, variables, headers=reader)
    assert error_codes(refused) == ["missing_scope"]
    listed = await gql(client, "{ feedbackList { edges { node { score } } } }", headers=reader)
    assert listed["data"]["feedbackList"]["edges"] == [{"node": {"score": 9}}]
    hidden = await gql(client, "{ feedbackList { edges { node { score } } } }", headers=other)
    assert error_codes(hidden) == ["missing_scope"]
