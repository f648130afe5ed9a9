"""GET /v1/reports/cases on cases whose every figure is worked out by hand below (timing columns
written straight into the table, as the cases domain stores them).

UTC days 2026-04-01 to 2026-04-03 (seconds are business seconds to first response / resolution):
  Apr 1  c1 logistics resolved          frs 600   rs 3600  resolved          assignee a1, phone
         c2 logistics closed            frs 1200  rs 7200  resolved, reopened once, resolution
                                                           breached           assignee a2
         c3 billing open                 -         -       first response breached, assignee a1
         c4 product_quality in_progress frs 1200   -       reopened once (resolved before)
  Apr 2  nothing
  Apr 3  c5 other waiting_customer      frs 3000   -
         c6 service_attitude resolved   frs 100   rs 500   resolved
  Outside: one opened 2026-03-31T23:59:59Z, one 2026-04-04T00:00:00Z (`to` is excluded).
"""

from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx

from tests.feedback.helpers import insert_case
from tests.fixtures.api import assert_problem, gql
from tests.fixtures.factories import KeyFactory, bearer, create_customer

PERIOD = {"from": "2026-04-01", "to": "2026-04-04"}
CATEGORIES = ("product_quality", "service_attitude", "logistics", "billing", "other")
STATUSES = ("open", "in_progress", "waiting_customer", "resolved", "closed")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def _cases(customer_id: str) -> None:
    resolved = _at("2026-04-05T00:00:00Z")
    rows: list[dict[str, Any]] = [
        {
            "opened_at": _at("2026-04-01T00:00:00Z"),
            "category": "logistics",
            "status": "resolved",
            "first_response_seconds": 600,
            "resolution_seconds": 3600,
            "resolved_at": resolved,
            "assignee": "a1",
            "channel": "phone",
        },
        {
            "opened_at": _at("2026-04-01T08:00:00Z"),
            "category": "logistics",
            "status": "closed",
            "first_response_seconds": 1200,
            "resolution_seconds": 7200,
            "resolved_at": resolved,
            "reopen_count": 1,
            "resolution_breached_at": resolved,
            "assignee": "a2",
        },
        {
            "opened_at": _at("2026-04-01T12:00:00Z"),
            "category": "billing",
            "status": "open",
            "first_response_breached_at": resolved,
            "assignee": "a1",
        },
        {
            "opened_at": _at("2026-04-01T23:59:59Z"),
            "category": "product_quality",
            "status": "in_progress",
            "first_response_seconds": 1200,
            "reopen_count": 1,
        },
        {
            "opened_at": _at("2026-04-03T00:00:00Z"),
            "category": "other",
            "status": "waiting_customer",
            "first_response_seconds": 3000,
        },
        {
            "opened_at": _at("2026-04-03T10:00:00Z"),
            "category": "service_attitude",
            "status": "resolved",
            "first_response_seconds": 100,
            "resolution_seconds": 500,
            "resolved_at": resolved,
        },
        {"opened_at": _at("2026-03-31T23:59:59Z"), "category": "billing"},
        {"opened_at": _at("2026-04-04T00:00:00Z"), "category": "billing"},
    ]
    for row in rows:
        await insert_case(customer_id, **row)


def _counts(names: tuple[str, ...], **given: int) -> dict[str, int]:
    return {name: given.get(name, 0) for name in names}


def _duration(measured: int, median: float | None, p90: float | None) -> dict[str, Any]:
    return {"measured": measured, "median_seconds": median, "p90_seconds": p90}


async def _report(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/reports/cases", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _figures(bucket: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bucket.items() if k not in ("start", "end")}


EMPTY = {
    "cases": 0,
    "by_category": _counts(CATEGORIES),
    "by_status": _counts(STATUSES),
    "first_response": _duration(0, None, None),
    "resolution": _duration(0, None, None),
    "sla_breached": 0,
    "sla_breach_percent": None,
    "ever_resolved": 0,
    "reopened": 0,
    "reopen_percent": None,
}


async def test_every_figure_by_hand(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _cases(customer["id"])
    report = await _report(client, **PERIOD)
    assert [b["start"] for b in report["buckets"]] == [
        "2026-04-01T00:00:00Z",
        "2026-04-02T00:00:00Z",
        "2026-04-03T00:00:00Z",
    ]
    day1, day2, day3 = (_figures(b) for b in report["buckets"])
    assert day1 == {
        "cases": 4,
        "by_category": _counts(CATEGORIES, logistics=2, billing=1, product_quality=1),
        "by_status": _counts(STATUSES, resolved=1, closed=1, open=1, in_progress=1),
        # 600, 1200, 1200 (c3 has none): median the middle, 1200; p90 at position
        # 0.9 * (3 - 1) = 1.8, between 1200 and 1200 (a tie): 1200
        "first_response": _duration(3, 1200.0, 1200.0),
        # 3600, 7200: median (3600 + 7200) / 2 = 5400; p90 at 0.9: 3600 + 0.9 * 3600 = 6840
        "resolution": _duration(2, 5400.0, 6840.0),
        # c2 (resolution), c3 (first response): 100 * 2 / 4 = 50.0
        "sla_breached": 2,
        "sla_breach_percent": 50.0,
        # ever resolved c1, c2 (resolved_at), c4 (reopened); reopened c2, c4: 100 * 2 / 3 = 66.7
        "ever_resolved": 3,
        "reopened": 2,
        "reopen_percent": 66.7,
    }
    assert day2 == EMPTY
    assert day3 == {
        "cases": 2,
        "by_category": _counts(CATEGORIES, other=1, service_attitude=1),
        "by_status": _counts(STATUSES, waiting_customer=1, resolved=1),
        # 100, 3000: median 1550; p90 at 0.9: 100 + 0.9 * 2900 = 2710
        "first_response": _duration(2, 1550.0, 2710.0),
        "resolution": _duration(1, 500.0, 500.0),
        "sla_breached": 0,
        "sla_breach_percent": 0.0,
        "ever_resolved": 1,
        "reopened": 0,
        "reopen_percent": 0.0,
    }
    assert _figures(report["total"]) == {
        "cases": 6,
        "by_category": _counts(
            CATEGORIES, logistics=2, billing=1, product_quality=1, other=1, service_attitude=1
        ),
        "by_status": _counts(
            STATUSES, resolved=2, closed=1, open=1, in_progress=1, waiting_customer=1
        ),
        # 100, 600, 1200, 1200, 3000: median 1200; p90 at 0.9 * 4 = 3.6: 1200 + 0.6 * 1800 = 2280
        "first_response": _duration(5, 1200.0, 2280.0),
        # 500, 3600, 7200: median 3600; p90 at 1.8: 3600 + 0.8 * 3600 = 6480
        "resolution": _duration(3, 3600.0, 6480.0),
        # 100 * 2 / 6 = 33.33 -> 33.3
        "sla_breached": 2,
        "sla_breach_percent": 33.3,
        # 100 * 2 / 4 = 50.0
        "ever_resolved": 4,
        "reopened": 2,
        "reopen_percent": 50.0,
    }


async def test_filters(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _cases(customer["id"])
    a1 = (await _report(client, **PERIOD, agent="a1"))["total"]
    # c1 and c3: breached c3 -> 50.0; ever resolved c1, reopened none -> 0.0
    assert (a1["cases"], a1["sla_breach_percent"], a1["reopen_percent"]) == (2, 50.0, 0.0)
    assert a1["first_response"] == _duration(1, 600.0, 600.0)
    logistics = (await _report(client, **PERIOD, category="logistics"))["total"]
    # c1, c2: 600 and 1200 -> median 900, p90 600 + 0.9 * 600 = 1140
    assert logistics["cases"] == 2
    assert logistics["first_response"] == _duration(2, 900.0, 1140.0)
    phone = (await _report(client, **PERIOD, channel="phone"))["total"]
    assert phone["cases"] == 1
    assert phone["by_status"]["resolved"] == 1


async def test_buckets_in_a_time_zone(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _cases(customer["id"])
    # New York is UTC-4 in April: the period is [2026-04-01T04:00Z, 2026-04-04T04:00Z).
    # c1 (Apr 1 00:00Z = Mar 31 20:00 local) and c7 fall before it; c2, c3, c4 are Apr 1 local;
    # c5 (Apr 3 00:00Z = Apr 2 20:00 local) is Apr 2; c6 (06:00 local) and c8 (Apr 4 00:00Z =
    # Apr 3 20:00 local, before `to`) are Apr 3.
    report = await _report(client, **PERIOD, time_zone="America/New_York")
    assert [(b["start"], b["cases"]) for b in report["buckets"]] == [
        ("2026-04-01T00:00:00-04:00", 3),
        ("2026-04-02T00:00:00-04:00", 1),
        ("2026-04-03T00:00:00-04:00", 2),
    ]
    assert report["total"]["cases"] == 6
    assert report["buckets"][2]["by_category"] == _counts(CATEGORIES, service_attitude=1, billing=1)


async def test_scope_is_cases_read(anon: httpx.AsyncClient, make_key: KeyFactory) -> None:
    reader = bearer(await make_key("cases:read"))
    interactions = bearer(await make_key("interactions:write"))
    assert (await anon.get("/v1/reports/cases", headers=reader)).status_code == 200
    assert_problem(await anon.get("/v1/reports/cases", headers=interactions), 403, "missing_scope")


async def test_graphql_gives_the_same_figures(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _cases(customer["id"])
    query = """
    query {
      caseReport(from: "2026-04-01", to: "2026-04-04", bucket: day, channel: PHONE) {
        total {
          cases slaBreachPercent reopenPercent
          byCategory { logistics billing } byStatus { resolved open }
          firstResponse { measured medianSeconds p90Seconds }
        }
        buckets { start cases }
      }
    }"""
    body = await gql(client, query)
    assert "errors" not in body, body
    report = body["data"]["caseReport"]
    assert report["total"] == {
        "cases": 1,
        "slaBreachPercent": 0.0,
        "reopenPercent": 0.0,
        "byCategory": {"logistics": 1, "billing": 0},
        "byStatus": {"resolved": 1, "open": 0},
        "firstResponse": {"measured": 1, "medianSeconds": 600.0, "p90Seconds": 600.0},
    }
    assert [b["cases"] for b in report["buckets"]] == [1, 0, 0]
