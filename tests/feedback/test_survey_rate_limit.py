"""Survey links take no API key, so they are rate-limited per client address."""

import httpx2 as httpx
import pytest

from app.core.config import Settings
from tests.feedback.helpers import issue_survey
from tests.fixtures.api import assert_problem
from tests.fixtures.factories import create_customer


@pytest.fixture
def settings() -> Settings:
    return Settings(log_json=True, log_level="warning", rate_limit="3/minute")


async def test_survey_links_are_rate_limited_per_address(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    customer = await create_customer(client)  # the admin key's own budget
    survey = await issue_survey(customer["id"])
    url = f"/v1/feedback/surveys/{survey.token}"
    for remaining in ("2", "1", "0"):
        response = await anon.get(url)
        assert response.status_code == 200
        assert response.headers["ratelimit-remaining"] == remaining
    assert_problem(await anon.post(url, json={"score": 5}), 429, "rate_limited")
    assert_problem(await anon.get("/v1/feedback/surveys/srv_other"), 429, "rate_limited")
    # Keys keep their own budgets.
    assert (await client.get("/v1/feedback")).status_code == 200
