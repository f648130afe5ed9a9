"""Cases over GraphQL: the same services as REST."""

import httpx2 as httpx

from app.cases.enums import CaseStatus
from tests.cases.helpers import events_of, move
from tests.fixtures.api import count_statements, error_codes, gql
from tests.fixtures.factories import create_customer, open_case

CASE_FIELDS = "id caseId status priority subject firstResponseDueAt reopenCount version"


async def test_open_transition_read_and_list(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    opened = await gql(
        client,
        'mutation($input: CaseCreateInput!) { openCase(input: $input, idempotencyKey: "k1") '
        f"{{ case {{ {CASE_FIELDS} }} replayed }} }}",
        {"input": {"customerId": customer["id"], "category": "BILLING", "subject": "Twice"}},
    )
    assert "errors" not in opened, opened
    case = opened["data"]["openCase"]["case"]
    assert case["status"] == "OPEN"
    assert case["priority"] == "NORMAL"
    node_id = case["id"]

    illegal = await gql(
        client,
        "mutation($id: ID!) { transitionCase(id: $id, input: {to: CLOSED}) { case { status } } }",
        {"id": node_id},
    )
    assert error_codes(illegal) == ["illegal_transition"]
    assert illegal["errors"][0]["extensions"]["allowed"] == [
        "in_progress",
        "waiting_customer",
        "resolved",
    ]
    moved = await gql(
        client,
        "mutation($id: ID!) { transitionCase(id: $id, input: {to: RESOLVED, "
        'resolution: {outcome: "refunded"}, requestSurvey: false}) '
        "{ case { status resolution { outcome compensation { points } } } } }",
        {"id": node_id},
    )
    assert moved["data"]["transitionCase"]["case"] == {
        "status": "RESOLVED",
        "resolution": {"outcome": "refunded", "compensation": None},
    }
    updated = await gql(
        client,
        'mutation($id: ID!) { updateCase(id: $id, input: {assignee: "li.na"}, ifMatch: 2) '
        "{ case { assignee version } } }",
        {"id": node_id},
    )
    assert updated["data"]["updateCase"]["case"] == {"assignee": "li.na", "version": 3}
    read = await gql(
        client,
        "query($id: ID!) { case(id: $id) { status transitions { fromStatus toStatus actor } } }",
        {"id": case["caseId"]},
    )
    assert read["data"]["case"]["transitions"] == [
        {"fromStatus": None, "toStatus": "OPEN", "actor": "test"},
        {"fromStatus": "OPEN", "toStatus": "RESOLVED", "actor": "test"},
    ]
    assert len(await events_of("case.resolved")) == 1


async def test_list_with_transitions_is_two_queries(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    for _ in range(4):
        case = await open_case(client, customer["id"])
        await move(client, case["id"], CaseStatus.IN_PROGRESS)
    query = (
        "query { cases(first: 10, filter: {status: IN_PROGRESS}) { edges { node { caseId "
        "transitions { toStatus } } } pageInfo { hasNextPage } } }"
    )
    with count_statements() as statements:
        listed = await gql(client, query)
    edges = listed["data"]["cases"]["edges"]
    assert len(edges) == 4
    assert all(
        [t["toStatus"] for t in e["node"]["transitions"]] == ["OPEN", "IN_PROGRESS"] for e in edges
    )
    reads = [s for s in statements if "case" in s and s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2, reads


async def test_sla_policies(client: httpx.AsyncClient) -> None:
    listed = await gql(client, "{ slaPolicies { priority firstResponseMinutes weekdays } }")
    assert [p["priority"] for p in listed["data"]["slaPolicies"]] == [
        "URGENT",
        "HIGH",
        "NORMAL",
        "LOW",
    ]
    bad = await gql(
        client,
        "mutation { updateSlaPolicy(priority: LOW, input: {firstResponseMinutes: 10, "
        'resolutionMinutes: 20, timeZone: "Nowhere/Land"}) { slaPolicy { version } } }',
    )
    assert error_codes(bad) == ["validation_failed"]
    good = await gql(
        client,
        "mutation { updateSlaPolicy(priority: LOW, ifMatch: 1, input: {firstResponseMinutes: 10, "
        'resolutionMinutes: 20, timeZone: "Asia/Shanghai", weekdays: [1, 2]}) '
        "{ slaPolicy { version timeZone weekdays } } }",
    )
    assert good["data"]["updateSlaPolicy"]["slaPolicy"] == {
        "version": 2,
        "timeZone": "Asia/Shanghai",
        "weekdays": [1, 2],
    }
