"""POST /v1/customers/search and GraphQL customers(filter: {rule}): the rule language over
profiles, metrics and orders, with its scopes, its errors and its paging."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx

from tests.fixtures.api import assert_problem, error_codes, gql
from tests.fixtures.factories import KeyFactory, bearer, create_customer, create_order, money

WINTER_BUYERS = {
    "all": [
        {"field": "country", "op": "eq", "value": "cn"},
        {
            "event": "order",
            "where": {"field": "items.category", "op": "eq", "value": "winter"},
            "within_days": 90,
            "count": {"op": "gte", "value": 2},
        },
    ]
}


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def _winter_order(client: httpx.AsyncClient, customer_id: str, days: int) -> None:
    item = {"sku": "COAT", "category": "winter", "quantity": 1, "unit_price": money("300.00")}
    await create_order(
        client, customer_id, items=[item], total=money("300.00"), occurred_at=_days_ago(days)
    )


async def _population(client: httpx.AsyncClient) -> dict[str, str]:
    """Four customers: two winter orders lately in CN (match), in DE (no), one long ago (no), and
    one lately plus one long ago (no)."""
    ids = {}
    for name, country, ages in (
        ("match", "CN", (3, 40)),
        ("german", "DE", (3, 40)),
        ("old", "CN", (200, 300)),
        ("once", "CN", (5, 120)),
    ):
        customer = await create_customer(client, country=country, first_name=name)
        ids[name] = customer["id"]
        for age in ages:
            await _winter_order(client, customer["id"], age)
    return ids


async def test_a_rule_finds_the_customers_it_describes(client: httpx.AsyncClient) -> None:
    ids = await _population(client)
    response = await client.post("/v1/customers/search", json={"rule": WINTER_BUYERS})
    assert response.status_code == 200, response.text
    assert [c["id"] for c in response.json()["data"]] == [ids["match"]]

    either = {"any": [WINTER_BUYERS, {"field": "country", "op": "eq", "value": "DE"}]}
    response = await client.post(
        "/v1/customers/search", json={"rule": either, "sort": "created_at"}
    )
    assert [c["id"] for c in response.json()["data"]] == [ids["match"], ids["german"]]

    body = await gql(
        client,
        'query($rule: JSON) { customers(filter: {rule: $rule, country: "CN"}) '
        "{ edges { node { customerId } } } }",
        {"rule": {"not": WINTER_BUYERS}},
    )
    found = {edge["node"]["customerId"] for edge in body["data"]["customers"]["edges"]}
    assert found == {ids["old"], ids["once"]}


async def test_metrics_conditions_count_customers_without_orders_as_zero(
    client: httpx.AsyncClient,
) -> None:
    buyer = await create_customer(client)
    await create_order(client, buyer["id"])
    prospect = await create_customer(client)
    rule = {"field": "metrics.order_count", "op": "eq", "value": 0}
    response = await client.post("/v1/customers/search", json={"rule": rule})
    assert [c["id"] for c in response.json()["data"]] == [prospect["id"]]
    spent = {"field": "metrics.net_revenue", "op": "gte", "value": "119.00"}
    response = await client.post("/v1/customers/search", json={"rule": spent, "q": "wei"})
    assert [c["id"] for c in response.json()["data"]] == [buyer["id"]]


async def test_pages_follow_the_cursor(client: httpx.AsyncClient) -> None:
    made = [await create_customer(client, tags=["tea"]) for _ in range(5)]
    await create_customer(client, tags=["coffee"])
    question: dict[str, Any] = {
        "rule": {"field": "tags", "op": "contains", "value": "TEA"},
        "sort": "created_at",
        "limit": 2,
    }
    seen: list[str] = []
    cursor = None
    while True:
        response = await client.post("/v1/customers/search", json={**question, "cursor": cursor})
        page = response.json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in made]
    tampered = {**question, "cursor": "x" + seen[0]}
    assert_problem(await client.post("/v1/customers/search", json=tampered), 400, "invalid_cursor")


async def test_a_rule_needs_the_scopes_of_what_it_reads(
    make_key: KeyFactory, client: httpx.AsyncClient
) -> None:
    await create_customer(client)
    reader = bearer(await make_key("customers:read"))
    metrics = {"rule": {"field": "metrics.order_count", "op": "gt", "value": 0}}
    orders = {"rule": {"event": "order"}}
    pii = {"rule": {"field": "email", "op": "exists", "value": True}}

    async def search(question: dict[str, Any]) -> httpx.Response:
        return await client.post("/v1/customers/search", json=question, headers=reader)

    assert "analytics:read" in assert_problem(await search(metrics), 403, "missing_scope")["detail"]
    assert "orders:read" in assert_problem(await search(orders), 403, "missing_scope")["detail"]
    assert_problem(await search(pii), 403, "pii_read_required")
    profile = {"rule": {"field": "country", "op": "eq", "value": "CN"}}
    assert len((await search(profile)).json()["data"]) == 1
    body = await gql(
        client,
        "query($rule: JSON) { customers(filter: {rule: $rule}) { edges { node { customerId } } } }",
        {"rule": pii["rule"]},
        headers=reader,
    )
    assert error_codes(body) == ["pii_read_required"]


async def test_a_bad_rule_is_a_422_at_the_bad_node(client: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, str]] = [
        ({"all": [{"field": "country", "op": "gt", "value": "CN"}]}, "body.rule.all.0.op"),
        ({"field": "nope", "op": "eq", "value": 1}, "body.rule.field"),
        ({"field": "city", "op": "contains", "value": "hai"}, "body.rule.op"),
        (
            {"not": {"field": "metrics.order_count", "op": "gt", "value": 1e300}},
            "body.rule.not.value",
        ),
        ({"field": "city", "op": "eq", "value": "a\u0000b"}, "body.rule.value"),
        ({"event": "order", "count": {"op": "gte", "value": "2"}}, "body.rule.count.value"),
        ({"any": "everyone"}, "body.rule.any"),
        ([], "body.rule"),
    ]
    for rule, field in cases:
        response = await client.post("/v1/customers/search", json={"rule": rule})
        body = assert_problem(response, 422, "validation_failed")
        assert [e["field"] for e in body["errors"]] == [field], (rule, body)
    deep: dict[str, Any] = {"field": "country", "op": "eq", "value": "CN"}
    for _ in range(40):
        deep = {"not": deep}
    assert_problem(
        await client.post("/v1/customers/search", json={"rule": deep}), 422, "validation_failed"
    )
    response = await client.post("/v1/customers/search", json={"rule": {}, "colour": "red"})
    assert_problem(response, 422, "validation_failed")
    body = await gql(
        client,
        "query($rule: JSON) { customers(filter: {rule: $rule}) { edges { node { customerId } } } }",
        {"rule": {"field": "tags", "op": "eq", "value": "x"}},
    )
    assert error_codes(body) == ["validation_failed"]


async def test_search_is_a_read(client: httpx.AsyncClient) -> None:
    """Nothing is stored for an Idempotency-Key: the same question later sees new customers."""
    headers = {"Idempotency-Key": "search-1"}
    question = {"rule": {"field": "tags", "op": "contains", "value": "rare"}}
    first = await client.post("/v1/customers/search", json=question, headers=headers)
    assert first.json()["data"] == []
    await create_customer(client, tags=["rare"])
    again = await client.post("/v1/customers/search", json=question, headers=headers)
    assert len(again.json()["data"]) == 1
    assert "idempotent-replayed" not in again.headers


async def test_the_field_catalogue(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    response = await client.get("/v1/rules/fields")
    assert response.status_code == 200, response.text
    catalogue = response.json()
    fields = {f["name"]: f for f in catalogue["fields"]}
    assert fields["country"]["type"] == "string"
    assert "eq" in fields["country"]["indexed_operators"]
    assert "contains" not in fields["city"]["operators"]
    assert fields["email"]["pii"] is True
    assert fields["metrics.value_tier"]["values"] == ["A", "B", "C"]
    assert {"attributes.<key>", "consent.<channel>.<purpose>"} <= set(fields)
    events = {e["name"]: e for e in catalogue["events"]}
    assert events["order"]["scope"] == "orders:read"
    assert "items.category" in {f["name"] for f in events["order"]["fields"]}
    assert catalogue["limits"]["conditions"] == 50
    assert (await anon.get("/v1/rules/fields")).status_code == 401
