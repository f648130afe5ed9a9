"""The service reports: satisfaction (NPS, CSAT, CES of feedback) and cases (volume, timing, SLA,
reopens). PostgreSQL computes every figure (``repository``); this module checks the scope and
shapes the rows into the report."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from app.cases.enums import CaseCategory, CaseStatus
from app.core.auth import Caller
from app.core.errors import ValidationFailed
from app.db import Connection
from app.reports import repository
from app.reports.schemas import (
    CaseBucket,
    CaseCategoryCounts,
    CaseFigures,
    CaseReport,
    CaseStatusCounts,
    CesFigures,
    CsatFigures,
    DurationFigures,
    NpsFigures,
    ReportQuery,
    SatisfactionBucket,
    SatisfactionFigures,
    SatisfactionReport,
)

SATISFACTION_SCOPE = "interactions:read"
CASES_SCOPE = "cases:read"
# PostgreSQL: "time zone ... not recognized" (its zone database lacks a name Python's has).
_INVALID_PARAMETER = "22023"


async def _run(conn: Connection, query: ReportQuery, run: Any) -> list[Mapping[str, Any]]:
    try:
        rows: list[Mapping[str, Any]] = await run(conn, query)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != _INVALID_PARAMETER:
            raise
        raise ValidationFailed(
            "The time zone is not known to the database; see errors[].",
            errors=[{"field": "query.time_zone", "message": "is not a known time zone"}],
        ) from None
    return rows


def _split(
    rows: list[Mapping[str, Any]], zone: ZoneInfo
) -> tuple[list[tuple[datetime, datetime, Mapping[str, Any]]], Mapping[str, Any]]:
    """The bucket rows with their local start and end, and the total row (always last)."""
    *buckets, total = rows
    assert total["bucket_start"] is None
    local = [
        (row["bucket_start"].astimezone(zone), row["bucket_end"].astimezone(zone), row)
        for row in buckets
    ]
    return local, total


def _satisfaction(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "nps": NpsFigures(
            responses=row["nps_responses"],
            promoters=row["nps_promoters"],
            passives=row["nps_passives"],
            detractors=row["nps_detractors"],
            score=row["nps_score"],
        ),
        "csat": CsatFigures(
            responses=row["csat_responses"],
            satisfied=row["csat_satisfied"],
            percent_satisfied=row["csat_percent_satisfied"],
        ),
        "ces": CesFigures(responses=row["ces_responses"], mean=row["ces_mean"]),
    }


async def satisfaction_report(
    conn: Connection, caller: Caller, query: ReportQuery
) -> SatisfactionReport:
    caller.require(SATISFACTION_SCOPE)
    zone = ZoneInfo(query.time_zone)
    buckets, total = _split(await _run(conn, query, repository.satisfaction), zone)
    return SatisfactionReport(
        start=query.start.astimezone(zone),
        end=query.end.astimezone(zone),
        bucket=query.bucket,
        time_zone=query.time_zone,
        total=SatisfactionFigures(**_satisfaction(total)),
        buckets=[
            SatisfactionBucket(start=start, end=end, **_satisfaction(row))
            for start, end, row in buckets
        ],
    )


def _duration(row: Mapping[str, Any], name: str) -> DurationFigures:
    return DurationFigures(
        measured=row[f"{name}_measured"],
        median_seconds=row[f"{name}_median_seconds"],
        p90_seconds=row[f"{name}_p90_seconds"],
    )


def _cases(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cases": row["cases"],
        "by_category": CaseCategoryCounts(
            **{c.value: row[f"category_{c.value}"] for c in CaseCategory}
        ),
        "by_status": CaseStatusCounts(**{s.value: row[f"status_{s.value}"] for s in CaseStatus}),
        "first_response": _duration(row, "first_response"),
        "resolution": _duration(row, "resolution"),
        "sla_breached": row["sla_breached"],
        "sla_breach_percent": row["sla_breach_percent"],
        "ever_resolved": row["ever_resolved"],
        "reopened": row["reopened"],
        "reopen_percent": row["reopen_percent"],
    }


async def case_report(conn: Connection, caller: Caller, query: ReportQuery) -> CaseReport:
    caller.require(CASES_SCOPE)
    zone = ZoneInfo(query.time_zone)
    buckets, total = _split(await _run(conn, query, repository.cases), zone)
    return CaseReport(
        start=query.start.astimezone(zone),
        end=query.end.astimezone(zone),
        bucket=query.bucket,
        time_zone=query.time_zone,
        total=CaseFigures(**_cases(total)),
        buckets=[CaseBucket(start=start, end=end, **_cases(row)) for start, end, row in buckets],
    )
