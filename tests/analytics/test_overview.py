"""The overview and a customer's metrics (REST and GraphQL) on the fixture set; scopes."""

import uuid

import httpx2 as httpx
from sqlalchemy import text

from app.analytics.refresh import refresh as refresh_step
from app.core import clock
from app.db import unit_of_work
from tests.analytics.conftest import AS_OF, FixtureSet
from tests.fixtures.api import assert_problem, count_statements, error_codes, gql
from tests.fixtures.factories import KeyFactory, bearer, money


async def test_overview(client: httpx.AsyncClient, fixture_set: FixtureSet) -> None:
    before = (await client.get("/v1/analytics/overview")).json()
    assert before["as_of"] is None
    assert before["refreshed_at"] is None
    # Every customer is a prospect until a refresh stages them (the orders made rows, not stages).
    assert before["lifecycle_stages"]["prospect"] == 13
    await refresh_step(as_of=AS_OF, refresh_id=None)
    ids = fixture_set.ids
    async with unit_of_work() as conn:
        # Predictions as the predictive step would write them.
        for name, risk, clv in (("c1", 0.1, "100.00"), ("c2", 0.2, "201.00"), ("c5", 0.95, None)):
            await conn.execute(
                text(
                    "UPDATE customer_metrics SET churn_risk = :r, clv_12m = :c WHERE customer_id = :i"
                ),
                {"r": risk, "c": clv, "i": uuid.UUID(ids[name])},
            )
        await conn.execute(
            text("UPDATE customer_metrics SET churn_risk = 1.0 WHERE customer_id = :i"),
            {"i": uuid.UUID(ids["c6"])},
        )
        await conn.execute(
            text(
                "INSERT INTO analytics_refreshes (id, status, as_of, requested_by, requested_at, "
                "finished_at, steps_total) VALUES (:id, 'succeeded', :as_of, 'test', :at, :at, 3)"
            ),
            {"id": uuid.uuid4(), "as_of": AS_OF, "at": clock.now()},
        )
    assert (await client.delete(f"/v1/customers/{ids['c10']}")).status_code == 204
    found = (await client.get("/v1/analytics/overview")).json()
    assert found["as_of"] == AS_OF.isoformat()
    assert found["refreshed_at"] is not None
    assert found["customers"] == 12  # c10 deleted
    assert found["lifecycle_stages"] == {
        "prospect": 2,  # c8, c9
        "new": 3,  # c3, c4, c12
        "active": 3,  # c1, c2, c11
        "at_risk": 1,  # c5
        "churned": 2,  # c6, c13
        "reactivated": 1,  # c7
    }
    assert found["value_tiers"] == {"a": 5, "b": 3, "c": 2, "none": 2}
    assert found["rfm_segments"] == {
        "champions": 1,
        "loyal": 0,
        "potential_loyalist": 0,
        "new": 1,
        "promising": 1,
        "need_attention": 0,
        "about_to_sleep": 1,
        "at_risk": 2,
        "cannot_lose": 1,
        "lost": 1,
        "none": 4,  # c6, c8, c9, c13
    }
    # Every order not cancelled, now: 500 + 800 + 50 + 300 + 160 + 2200 + 160 + 75 + 400 + 400
    # + 90; refunds 100 + 150 + 90.
    assert found["revenue"] == {
        "gross": money("5135.00"),
        "refunds": money("340.00"),
        "net": money("4795.00"),
    }
    # With orders: all but c8 (cancelled only) and c10; repeat: c1, c2, c5, c7, c11.
    assert (found["customers_with_orders"], found["repeat_customers"]) == (11, 5)
    assert found["repeat_rate"] == 0.4545
    assert found["average_clv"] == money("150.50")
    assert [b["customers"] for b in found["churn_risk"]] == [1, 1, 0, 0, 2]
    assert [(b["low"], b["high"]) for b in found["churn_risk"]][-1] == (0.8, 1.0)

    gql_found = await gql(
        client,
        "{ analyticsOverview { customers repeatRate valueTiers { a } revenue { net { amount } } "
        "churnRisk { customers } } }",
    )
    overview = gql_found["data"]["analyticsOverview"]
    assert overview["customers"] == 12
    assert overview["valueTiers"] == {"a": 5}
    assert overview["revenue"]["net"]["amount"] == "4795.00"


async def test_customer_metrics_in_graphql_is_one_query(
    client: httpx.AsyncClient, fixture_set: FixtureSet
) -> None:
    await refresh_step(as_of=AS_OF, refresh_id=None)
    query = (
        "{ customers(first: 20) { edges { node { customerId metrics { lifecycleStage valueTier "
        "rfmSegment orderCount netRevenue { amount currency } } } } } }"
    )
    with count_statements() as statements:
        found = await gql(client, query)
    nodes = {
        e["node"]["customerId"]: e["node"]["metrics"] for e in found["data"]["customers"]["edges"]
    }
    assert len(nodes) == 13
    c2 = nodes[fixture_set.ids["c2"]]
    assert c2 == {
        "lifecycleStage": "ACTIVE",
        "valueTier": "A",
        "rfmSegment": "CANNOT_LOSE",
        "orderCount": 4,
        "netRevenue": {"amount": "800.00", "currency": "CNY"},
    }
    assert nodes[fixture_set.ids["c10"]]["lifecycleStage"] == "PROSPECT"
    reads = [s for s in statements if "customer_metrics" in s]
    assert len(reads) == 1, reads


async def test_metrics_errors_and_scopes(
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    make_key: KeyFactory,
    fixture_set: FixtureSet,
) -> None:
    assert_problem(
        await client.get(f"/v1/customers/{uuid.uuid4()}/metrics"), 404, "customer_not_found"
    )
    c10 = fixture_set.ids["c10"]
    assert (await client.delete(f"/v1/customers/{c10}")).status_code == 204
    assert_problem(await client.get(f"/v1/customers/{c10}/metrics"), 404, "customer_not_found")
    path = f"/v1/customers/{fixture_set.ids['c1']}/metrics"
    reader = bearer(await make_key("analytics:read"))
    customers_only = bearer(await make_key("customers:read"))
    assert (await anon.get(path, headers=reader)).status_code == 200
    assert (await anon.get("/v1/analytics/overview", headers=reader)).status_code == 200
    assert_problem(await anon.get(path, headers=customers_only), 403, "missing_scope")
    assert_problem(
        await anon.get("/v1/analytics/overview", headers=customers_only), 403, "missing_scope"
    )
    denied = await gql(
        anon,
        "{ customers(first: 1) { edges { node { metrics { orderCount } } } } }",
        headers=customers_only,
    )
    assert error_codes(denied) == ["missing_scope"]
