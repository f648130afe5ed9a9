"""The service reports over REST (``/reports``)."""

from typing import Annotated

from fastapi import Query, Response

from app.api.deps import ScopeDep
from app.api.responses import json_response
from app.api.routing import resource_router
from app.reports import service
from app.reports.schemas import MAX_BUCKETS, CaseReport, ReportQuery, SatisfactionReport

router = resource_router("/reports", "reports")

_PERIOD = (
    "The period is [`from`, `to`) (default: the last 30 days up to the end of today), cut into "
    "`bucket`s of `time_zone` (a day is the local day; weeks start on Monday); every bucket is "
    "listed, an empty one with zero counts and null figures. At most "
    f"{MAX_BUCKETS:,} buckets (422 beyond). Computed by the database when asked."
)


@router.get(
    "/satisfaction",
    summary="Satisfaction report",
    description="NPS (promoters 9–10, passives 7–8, detractors 0–6; score = % promoters − % "
    "detractors), CSAT (% of answers 4–5) and CES (mean) of the feedback submitted in the period, "
    "in total and per bucket, filtered by the feedback's `category`, `channel` and `agent`. "
    "Scope `interactions:read`. " + _PERIOD,
    response_model=SatisfactionReport,
)
async def get_satisfaction_report(
    scope: ScopeDep, query: Annotated[ReportQuery, Query()]
) -> Response:
    return json_response(await service.satisfaction_report(scope.conn, scope.caller, query))


@router.get(
    "/cases",
    summary="Case report",
    description="Of the cases opened in the period, in total and per bucket: volume, counts by "
    "category and by current status, median and 90th percentile (interpolated, "
    "`percentile_cont`) of the business seconds to first response and to resolution, the SLA "
    "breach rate (cases with either SLA breached) and the reopen rate (cases reopened over cases "
    "ever resolved); filtered by the case's `category`, `channel` and `agent` (assignee). "
    "Scope `cases:read`. " + _PERIOD,
    response_model=CaseReport,
)
async def get_case_report(scope: ScopeDep, query: Annotated[ReportQuery, Query()]) -> Response:
    return json_response(await service.case_report(scope.conn, scope.caller, query))
