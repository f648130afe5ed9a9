"""A refresh with its real steps, through the job, on the fixture set."""

import httpx2 as httpx

from app.analytics import tasks
from tests.analytics.conftest import AS_OF, FixtureSet


async def test_a_refresh_runs_every_step(
    client: httpx.AsyncClient, fixture_set: FixtureSet
) -> None:
    created = (await client.post("/v1/analytics/refresh", json={"as_of": AS_OF.isoformat()})).json()
    await tasks.run_refresh({"refresh_id": created["id"]})
    done = (await client.get(f"/v1/analytics/refreshes/{created['id']}")).json()
    assert done["status"] == "succeeded", done["error"]
    assert list(done["figures"]) == ["metrics", "predictions", "recommendations"]
    assert done["figures"]["metrics"]["lifecycle_changes"] == 10
    c1 = (await client.get(f"/v1/customers/{fixture_set.ids['c1']}/metrics")).json()
    assert (c1["rfm_segment"], c1["value_tier"], c1["lifecycle_stage"]) == (
        "champions",
        "A",
        "active",
    )
    overview = (await client.get("/v1/analytics/overview")).json()
    assert overview["as_of"] == AS_OF.isoformat()
