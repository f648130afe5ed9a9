"""Segments over GraphQL: the same service as REST, and Customer.segments in one query."""

import httpx2 as httpx

from tests.fixtures.api import count_statements, error_codes, gql
from tests.fixtures.factories import create_customer

CREATE = """
mutation($input: SegmentCreateInput!) {
  createSegment(input: $input) { segment { id segmentId name kind rule ruleVersion memberCount } }
}
"""


async def test_segments_over_graphql(client: httpx.AsyncClient) -> None:
    tea = [await create_customer(client, tags=["tea"]) for _ in range(3)]
    await create_customer(client, tags=["coffee"])
    rule = {"field": "tags", "op": "contains", "value": "TEA"}
    body = await gql(client, CREATE, {"input": {"name": "Tea", "rule": rule}})
    assert "errors" not in body, body
    segment = body["data"]["createSegment"]["segment"]
    assert segment["memberCount"] == 3
    assert segment["rule"] == {"field": "tags", "op": "contains", "value": "tea"}
    assert segment["kind"] == "dynamic"

    members = await gql(
        client,
        "query($id: ID!) { segmentMembers(id: $id) { edges { node { customerId ruleVersion } } } }",
        {"id": segment["id"]},
    )
    found = {e["node"]["customerId"] for e in members["data"]["segmentMembers"]["edges"]}
    assert found == {c["id"] for c in tea}

    preview = await gql(
        client,
        "query($rule: JSON!) { previewSegment(rule: $rule, sample: 1) { count sample { id } } }",
        {"rule": {"field": "tags", "op": "contains", "value": "coffee"}},
    )
    assert preview["data"]["previewSegment"]["count"] == 1
    assert len(preview["data"]["previewSegment"]["sample"]) == 1

    with count_statements() as statements:
        body = await gql(
            client, "{ customers { edges { node { customerId segments { name ruleVersion } } } } }"
        )
    assert "errors" not in body, body
    of_segments = [s for s in statements if "segment_memberships" in s]
    assert len(of_segments) == 1, of_segments
    names = {
        e["node"]["customerId"]: [s["name"] for s in e["node"]["segments"]]
        for e in body["data"]["customers"]["edges"]
    }
    assert {cid for cid, found in names.items() if found == ["Tea"]} == {c["id"] for c in tea}

    bad = await gql(
        client,
        CREATE,
        {"input": {"name": "Bad", "rule": {"field": "tags", "op": "eq", "value": 1}}},
    )
    assert error_codes(bad) == ["validation_failed"]
    static = await gql(client, CREATE, {"input": {"name": "VIP", "kind": "static"}})
    static_id = static["data"]["createSegment"]["segment"]["id"]
    added = await gql(
        client,
        "mutation($id: ID!, $ids: [UUID!]!) { addSegmentMembers(id: $id, customerIds: $ids) "
        "{ results { status } memberCount } }",
        {"id": static_id, "ids": [tea[0]["id"]]},
    )
    assert added["data"]["addSegmentMembers"] == {
        "results": [{"status": "added"}],
        "memberCount": 1,
    }
