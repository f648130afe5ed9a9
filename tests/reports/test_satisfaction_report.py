"""GET /v1/reports/satisfaction on answers whose every figure is worked out by hand below.

The main set is in Asia/Shanghai (UTC+8, no DST), days 2026-03-01 to 2026-03-03 local:
  Mar 1 local = [2026-02-28T16:00Z, 2026-03-01T16:00Z)
    NPS 10 (at local midnight exactly; category logistics), 9 (agent a1), 7 (agent a1), 3 (23:59:59
    local); CSAT 5, 4, 2 (channel email); CES 6, 5
  Mar 2 local: nothing
  Mar 3 local = [2026-03-02T16:00Z, 2026-03-03T16:00Z)
    NPS 6 (at local midnight, still Mar 2 in UTC), 0 (category logistics); CSAT 3; CES 1 (channel
    email), 2, 2
  Outside: NPS 10 at 2026-02-28T15:59:59Z (Feb 28 local), NPS 10 at 2026-03-03T16:00Z (Mar 4 local:
  `to` is excluded).
"""

from typing import Any

import httpx2 as httpx
import pytest
import time_machine

from tests.feedback.helpers import insert_feedback
from tests.fixtures.api import assert_problem, gql
from tests.fixtures.factories import KeyFactory, bearer, create_customer

SHANGHAI = {"from": "2026-03-01", "to": "2026-03-04", "time_zone": "Asia/Shanghai"}


async def _answers(customer_id: str) -> None:
    rows: list[tuple[str, int, str, dict[str, Any]]] = [
        ("nps", 10, "2026-02-28T16:00:00Z", {"category": "logistics"}),
        ("nps", 9, "2026-03-01T02:00:00Z", {"agent": "a1"}),
        ("nps", 7, "2026-03-01T03:00:00Z", {"agent": "a1"}),
        ("nps", 3, "2026-03-01T15:59:59Z", {}),
        ("csat", 5, "2026-03-01T04:00:00Z", {}),
        ("csat", 4, "2026-03-01T05:00:00Z", {}),
        ("csat", 2, "2026-03-01T06:00:00Z", {"channel": "email"}),
        ("ces", 6, "2026-03-01T07:00:00Z", {}),
        ("ces", 5, "2026-03-01T08:00:00Z", {}),
        ("nps", 6, "2026-03-02T16:00:00Z", {}),
        ("nps", 0, "2026-03-03T10:00:00Z", {"category": "logistics"}),
        ("csat", 3, "2026-03-03T10:00:00Z", {}),
        ("ces", 1, "2026-03-03T11:00:00Z", {"channel": "email"}),
        ("ces", 2, "2026-03-03T12:00:00Z", {}),
        ("ces", 2, "2026-03-03T13:00:00Z", {}),
        ("nps", 10, "2026-02-28T15:59:59Z", {}),
        ("nps", 10, "2026-03-03T16:00:00Z", {}),
    ]
    for kind, score, at, columns in rows:
        await insert_feedback(customer_id, kind, score, at, **columns)


def _figures(
    nps: tuple[int, int, int, int, float | None],
    csat: tuple[int, int, float | None],
    ces: tuple[int, float | None],
) -> dict[str, Any]:
    return {
        "nps": dict(
            zip(("responses", "promoters", "passives", "detractors", "score"), nps, strict=True)
        ),
        "csat": dict(zip(("responses", "satisfied", "percent_satisfied"), csat, strict=True)),
        "ces": dict(zip(("responses", "mean"), ces, strict=True)),
    }


EMPTY = _figures((0, 0, 0, 0, None), (0, 0, None), (0, None))


async def _report(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/reports/satisfaction", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def test_every_figure_by_hand(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _answers(customer["id"])
    report = await _report(client, **SHANGHAI)
    assert (report["start"], report["end"]) == (
        "2026-03-01T00:00:00+08:00",
        "2026-03-04T00:00:00+08:00",
    )
    assert (report["bucket"], report["time_zone"]) == ("day", "Asia/Shanghai")
    assert [(b["start"], b["end"]) for b in report["buckets"]] == [
        ("2026-03-01T00:00:00+08:00", "2026-03-02T00:00:00+08:00"),
        ("2026-03-02T00:00:00+08:00", "2026-03-03T00:00:00+08:00"),
        ("2026-03-03T00:00:00+08:00", "2026-03-04T00:00:00+08:00"),
    ]
    figures = [{k: v for k, v in b.items() if k not in ("start", "end")} for b in report["buckets"]]
    assert figures == [
        _figures(
            # 4 answers: promoters 10, 9; passive 7; detractor 3: 100 * (2 - 1) / 4 = 25.0
            (4, 2, 1, 1, 25.0),
            # 5, 4 of 5, 4, 2: 100 * 2 / 3 = 66.67 -> 66.7
            (3, 2, 66.7),
            # (6 + 5) / 2 = 5.5
            (2, 5.5),
        ),
        EMPTY,  # Mar 2 local: zero counts, null figures
        _figures(
            # 6 (submitted 2026-03-02T16:00Z, local midnight of Mar 3), 0: 100 * (0 - 2) / 2
            (2, 0, 0, 2, -100.0),
            # 3 is not satisfied: 100 * 0 / 1
            (1, 0, 0.0),
            # (1 + 2 + 2) / 3 = 1.6667 -> 1.67
            (3, 1.67),
        ),
    ]
    assert report["total"] == _figures(
        # promoters 10, 9; passive 7; detractors 3, 6, 0: 100 * (2 - 3) / 6 = -16.67 -> -16.7
        (6, 2, 1, 3, -16.7),
        # 5, 4 of 5, 4, 2, 3: 100 * 2 / 4 = 50.0
        (4, 2, 50.0),
        # (6 + 5 + 1 + 2 + 2) / 5 = 3.2
        (5, 3.2),
    )


async def test_filters(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _answers(customer["id"])
    by_category = await _report(client, **SHANGHAI, category="logistics")
    # NPS 10 (Mar 1) and 0 (Mar 3): 100 * (1 - 1) / 2 = 0.0
    assert by_category["total"] == _figures((2, 1, 0, 1, 0.0), (0, 0, None), (0, None))
    assert by_category["buckets"][0]["nps"]["score"] == 100.0  # 100 * 1 / 1
    by_channel = await _report(client, **SHANGHAI, channel="email")
    # CSAT 2: 0 of 1 satisfied; CES 1
    assert by_channel["total"] == _figures((0, 0, 0, 0, None), (1, 0, 0.0), (1, 1.0))
    by_agent = await _report(client, **SHANGHAI, agent="a1")
    # NPS 9 and 7: 100 * (1 - 0) / 2 = 50.0
    assert by_agent["total"] == _figures((2, 1, 1, 0, 50.0), (0, 0, None), (0, None))
    assert len(by_agent["buckets"]) == 3
    nobody = await _report(client, **SHANGHAI, agent="nobody")
    assert nobody["total"] == EMPTY
    assert [b["nps"]["responses"] for b in nobody["buckets"]] == [0, 0, 0]


async def test_utc_cuts_the_same_answers_into_other_days(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _answers(customer["id"])
    report = await _report(client, **{"from": "2026-03-01", "to": "2026-03-04"})
    # UTC days: Mar 1 holds NPS 9, 7, 3 (the 10 at 2026-02-28T16:00Z is Feb 28); Mar 2 holds
    # NPS 6 (16:00Z); Mar 3 holds NPS 0 (the 10 at 16:00Z too: Mar 3 is in the period in UTC).
    assert [b["nps"]["responses"] for b in report["buckets"]] == [3, 1, 2]
    assert report["buckets"][0]["start"] == "2026-03-01T00:00:00Z"


async def test_a_day_is_the_local_day_across_a_dst_change(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    # Europe/Berlin moves to summer time on 2026-03-29: that day has 23 hours.
    for at in (
        "2026-03-28T23:00:00Z",  # Mar 29 00:00 CET: first instant of Mar 29
        "2026-03-29T21:59:59Z",  # Mar 29 23:59:59 CEST: last of Mar 29
        "2026-03-29T22:00:00Z",  # Mar 30 00:00 CEST
    ):
        await insert_feedback(customer["id"], "nps", 10, at)
    report = await _report(
        client, **{"from": "2026-03-29", "to": "2026-03-31", "time_zone": "Europe/Berlin"}
    )
    assert [(b["start"], b["end"], b["nps"]["responses"]) for b in report["buckets"]] == [
        ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 2),
        ("2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00", 1),
    ]


async def test_weeks_and_months(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _answers(customer["id"])
    # 2026-03-01 is a Sunday: its ISO week starts Monday Feb 23; the next on Mar 2.
    weeks = await _report(client, **SHANGHAI, bucket="week")
    assert [(b["start"], b["end"]) for b in weeks["buckets"]] == [
        ("2026-03-01T00:00:00+08:00", "2026-03-02T00:00:00+08:00"),  # cut to the period
        ("2026-03-02T00:00:00+08:00", "2026-03-04T00:00:00+08:00"),
    ]
    # Week 1 is Mar 1 local; week 2 is Mar 2 and Mar 3.
    assert [b["nps"]["responses"] for b in weeks["buckets"]] == [4, 2]
    assert weeks["total"]["nps"]["score"] == -16.7
    months = await _report(
        client,
        **{"from": "2026-01-15", "to": "2026-03-10", "time_zone": "Asia/Shanghai"},
        bucket="month",
    )
    assert [(b["start"], b["nps"]["responses"]) for b in months["buckets"]] == [
        ("2026-01-15T00:00:00+08:00", 0),
        ("2026-02-01T00:00:00+08:00", 1),  # the NPS 10 of Feb 28, 23:59:59 local
        ("2026-03-01T00:00:00+08:00", 7),  # 4 + 2 + the one of Mar 4 local
    ]


async def test_times_with_offsets_and_naive_times(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _answers(customer["id"])
    # The same period written as UTC times, and as local times without an offset.
    in_utc = await _report(
        client,
        **{
            "from": "2026-02-28T16:00:00Z",
            "to": "2026-03-03T16:00:00Z",
            "time_zone": "Asia/Shanghai",
        },
    )
    naive = await _report(
        client,
        **{
            "from": "2026-03-01T00:00:00",
            "to": "2026-03-04T00:00:00",
            "time_zone": "Asia/Shanghai",
        },
    )
    by_dates = await _report(client, **SHANGHAI)
    assert in_utc == naive == by_dates


async def test_the_default_period_is_the_last_30_days(client: httpx.AsyncClient) -> None:
    with time_machine.travel("2026-03-03T20:00:00Z", tick=False):  # Mar 4, 04:00 in Shanghai
        report = await _report(client, time_zone="Asia/Shanghai")
    assert report["end"] == "2026-03-05T00:00:00+08:00"  # the end of today, local
    assert report["start"] == "2026-02-03T00:00:00+08:00"  # 30 days before
    assert len(report["buckets"]) == 30


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "query.time_zone"),
        ({"time_zone": "../../etc/passwd"}, "query.time_zone"),
        ({"time_zone": "+08:00"}, "query.time_zone"),
        ({"bucket": "year"}, "query.bucket"),
        ({"from": "2026-03-04", "to": "2026-03-04"}, "query.to"),
        ({"from": "2026-03-05", "to": "2026-03-04"}, "query.to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "query.bucket"),  # 2,192 days
        ({"from": "0001-01-01", "to": "2026-01-01"}, "query.from"),
        ({"from": "2026-01-01", "to": "9999-12-31T23:59:59Z"}, "query.to"),
        ({"from": "yesterday"}, "query.from"),
        ({"channel": "pigeon"}, "query.channel"),
        ({"category": "Not A Slug"}, "query.category"),
    ],
)
async def test_invalid_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/reports/satisfaction", params=params)
    problem = assert_problem(response, 422, "validation_failed")
    assert field in {e["field"] for e in problem["errors"]}, problem


async def test_at_most_1000_buckets(client: httpx.AsyncClient) -> None:
    ok = await client.get(
        "/v1/reports/satisfaction", params={"from": "2026-01-01", "to": "2028-09-27"}
    )
    assert len(ok.json()["buckets"]) == 1000  # 365 + 366 + 269 days
    over = await client.get(
        "/v1/reports/satisfaction", params={"from": "2026-01-01", "to": "2028-09-28"}
    )
    assert_problem(over, 422, "validation_failed")
    monthly = await client.get(
        "/v1/reports/satisfaction",
        params={"from": "2000-01-01", "to": "2026-01-01", "bucket": "month"},
    )
    assert len(monthly.json()["buckets"]) == 26 * 12


async def test_scope_is_interactions_read(anon: httpx.AsyncClient, make_key: KeyFactory) -> None:
    reader = bearer(await make_key("interactions:read"))
    cases = bearer(await make_key("cases:read"))
    assert (await anon.get("/v1/reports/satisfaction", headers=reader)).status_code == 200
    assert_problem(await anon.get("/v1/reports/satisfaction", headers=cases), 403, "missing_scope")
    assert_problem(await anon.get("/v1/reports/satisfaction"), 401, "unauthorized")


async def test_graphql_gives_the_same_figures(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    await _answers(customer["id"])
    query = """
    query($from: String, $to: String, $tz: String!) {
      satisfactionReport(from: $from, to: $to, timeZone: $tz, bucket: week, agent: "a1") {
        start end bucket timeZone
        total { nps { responses promoters passives detractors score } csat { percentSatisfied } }
        buckets { start nps { responses score } ces { mean } }
      }
    }"""
    body = await gql(
        client, query, {"from": "2026-03-01", "to": "2026-03-04", "tz": "Asia/Shanghai"}
    )
    assert "errors" not in body, body
    report = body["data"]["satisfactionReport"]
    rest = await _report(client, **SHANGHAI, bucket="week", agent="a1")
    assert report["total"]["nps"] == rest["total"]["nps"]
    assert report["total"]["csat"] == {"percentSatisfied": None}
    assert [b["nps"] for b in report["buckets"]] == [
        {"responses": b["nps"]["responses"], "score": b["nps"]["score"]} for b in rest["buckets"]
    ]
    assert (report["bucket"], report["timeZone"]) == ("week", "Asia/Shanghai")
    bad = await gql(client, query, {"from": "2026-03-01", "to": "2026-03-04", "tz": "Nowhere"})
    assert bad["errors"][0]["extensions"]["code"] == "validation_failed"
