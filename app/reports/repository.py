"""The report queries: every figure is computed by PostgreSQL, one statement per report.

Each statement picks the period's rows with their local bucket (``date_trunc`` of the time in the
report's time zone), aggregates them per bucket and in total in one pass (``GROUPING SETS``), and
joins the buckets onto the complete series of the period (``generate_series`` over local times), so
an empty bucket is a row of zeros and nulls.
"""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import DateTime, String, TextClause, bindparam, text

from app.cases.enums import CaseCategory, CaseStatus
from app.db import Connection
from app.reports.schemas import ReportBucket, ReportQuery

# Written into the SQL from these fixed values only (never from a client's text).
_UNIT = {ReportBucket.day: "day", ReportBucket.week: "week", ReportBucket.month: "month"}
_STEP = {ReportBucket.day: "1 day", ReportBucket.week: "7 days", ReportBucket.month: "1 month"}


def _series(bucket: ReportBucket) -> str:
    """The period's buckets: their local start ``b`` and the part of the period each covers."""
    unit, step = _UNIT[bucket], _STEP[bucket]
    return f"""
    series AS (
        SELECT s AS b,
               greatest(s AT TIME ZONE :tz, :start) AS bucket_start,
               least((s + interval '{step}') AT TIME ZONE :tz, :end) AS bucket_end
        FROM generate_series(
            date_trunc('{unit}', :start AT TIME ZONE :tz),
            :end AT TIME ZONE :tz,
            interval '{step}'
        ) AS s
        WHERE s < :end AT TIME ZONE :tz
    )"""


def _params(query: ReportQuery) -> dict[str, Any]:
    return {
        "start": query.start,
        "end": query.end,
        "tz": query.time_zone,
        "category": query.category,
        "channel": query.channel.value if query.channel else None,
        "agent": query.agent,
    }


def _filters(alias: str, agent_column: str) -> str:
    # A filter not given is NULL and holds for every row.
    return f"""
          AND (CAST(:category AS text) IS NULL OR {alias}.category = :category)
          AND (CAST(:channel AS text) IS NULL OR {alias}.channel = :channel)
          AND (CAST(:agent AS text) IS NULL OR {alias}.{agent_column} = :agent)"""


def _report_sql(picked: str, figures: str, outputs: str, bucket: ReportBucket) -> str:
    return f"""
    WITH picked AS ({picked}),
    figures AS (
        SELECT b AS figures_b, GROUPING(b) AS is_total, {figures}
        FROM picked
        GROUP BY GROUPING SETS ((b), ())
    ),
    {_series(bucket)},
    counted AS (
        SELECT series.bucket_start, series.bucket_end, figures.*
        FROM series LEFT JOIN figures ON figures.figures_b = series.b AND figures.is_total = 0
        UNION ALL
        SELECT NULL, NULL, figures.* FROM figures WHERE figures.is_total = 1
    )
    SELECT bucket_start, bucket_end, {outputs}
    FROM counted
    ORDER BY bucket_start NULLS LAST
    """


def _percent(part: str, whole: str) -> str:
    return f"round(100.0 * {part} / nullif({whole}, 0), 1)::float8"


# ------------------------------------------------------------------------------------- satisfaction

_SATISFACTION_FIGURES = """
    count(*) FILTER (WHERE kind = 'nps') AS nps_responses,
    count(*) FILTER (WHERE kind = 'nps' AND score >= 9) AS nps_promoters,
    count(*) FILTER (WHERE kind = 'nps' AND score BETWEEN 7 AND 8) AS nps_passives,
    count(*) FILTER (WHERE kind = 'nps' AND score <= 6) AS nps_detractors,
    count(*) FILTER (WHERE kind = 'csat') AS csat_responses,
    count(*) FILTER (WHERE kind = 'csat' AND score >= 4) AS csat_satisfied,
    count(*) FILTER (WHERE kind = 'ces') AS ces_responses,
    round(avg(score) FILTER (WHERE kind = 'ces'), 2)::float8 AS ces_mean"""
_SATISFACTION_COUNTS = (
    "nps_responses",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    "csat_responses",
    "csat_satisfied",
    "ces_responses",
)
_SATISFACTION_OUTPUTS = ", ".join(
    [
        *(f"coalesce({name}, 0) AS {name}" for name in _SATISFACTION_COUNTS),
        _percent("(nps_promoters - nps_detractors)", "nps_responses") + " AS nps_score",
        _percent("csat_satisfied", "csat_responses") + " AS csat_percent_satisfied",
        "ces_mean",
    ]
)


def _satisfaction_sql(bucket: ReportBucket) -> str:
    picked = f"""
        SELECT date_trunc('{_UNIT[bucket]}', f.submitted_at AT TIME ZONE :tz) AS b, f.kind, f.score
        FROM feedback f
        WHERE f.submitted_at >= :start AND f.submitted_at < :end {_filters("f", "agent")}"""
    return _report_sql(picked, _SATISFACTION_FIGURES, _SATISFACTION_OUTPUTS, bucket)


_SATISFACTION = {bucket: _satisfaction_sql(bucket) for bucket in ReportBucket}


def _typed(sql: str) -> TextClause:
    return text(sql).bindparams(
        bindparam("start", type_=DateTime(timezone=True)),
        bindparam("end", type_=DateTime(timezone=True)),
        bindparam("tz", type_=String()),
        bindparam("category", type_=String()),
        bindparam("channel", type_=String()),
        bindparam("agent", type_=String()),
    )


async def _rows(
    conn: Connection, statement: TextClause, query: ReportQuery
) -> list[Mapping[str, Any]]:
    result = await conn.execute(statement, _params(query))
    return [dict(row._mapping) for row in result]


_SATISFACTION_STATEMENTS = {bucket: _typed(sql) for bucket, sql in _SATISFACTION.items()}


async def satisfaction(conn: Connection, query: ReportQuery) -> list[Mapping[str, Any]]:
    """The buckets in order (``bucket_start``/``bucket_end`` set), then the total (both None)."""
    return await _rows(conn, _SATISFACTION_STATEMENTS[query.bucket], query)


# -------------------------------------------------------------------------------------------- cases

_DURATIONS = ("first_response", "resolution")
_CASE_FIGURES = ",".join(
    [
        "count(*) AS cases",
        *(
            f"count(*) FILTER (WHERE category = '{c.value}') AS category_{c.value}"
            for c in CaseCategory
        ),
        *(f"count(*) FILTER (WHERE status = '{s.value}') AS status_{s.value}" for s in CaseStatus),
        *(
            part
            for d in _DURATIONS
            for part in (
                f"count({d}_seconds) AS {d}_measured",
                f"round(percentile_cont(0.5) WITHIN GROUP (ORDER BY {d}_seconds)::numeric, 1)"
                f"::float8 AS {d}_median_seconds",
                f"round(percentile_cont(0.9) WITHIN GROUP (ORDER BY {d}_seconds)::numeric, 1)"
                f"::float8 AS {d}_p90_seconds",
            )
        ),
        "count(*) FILTER (WHERE breached) AS sla_breached",
        "count(*) FILTER (WHERE ever_resolved) AS ever_resolved",
        "count(*) FILTER (WHERE reopened) AS reopened",
    ]
)
_CASE_COUNTS = (
    "cases",
    *(f"category_{c.value}" for c in CaseCategory),
    *(f"status_{s.value}" for s in CaseStatus),
    *(f"{d}_measured" for d in _DURATIONS),
    "sla_breached",
    "ever_resolved",
    "reopened",
)
_CASE_OUTPUTS = ", ".join(
    [
        *(f"coalesce({name}, 0) AS {name}" for name in _CASE_COUNTS),
        *(f"{d}_{p}_seconds" for d in _DURATIONS for p in ("median", "p90")),
        _percent("sla_breached", "cases") + " AS sla_breach_percent",
        _percent("reopened", "ever_resolved") + " AS reopen_percent",
    ]
)


def _cases_sql(bucket: ReportBucket) -> str:
    picked = f"""
        SELECT date_trunc('{_UNIT[bucket]}', c.opened_at AT TIME ZONE :tz) AS b,
               c.category, c.status, c.first_response_seconds, c.resolution_seconds,
               (c.first_response_breached_at IS NOT NULL
                OR c.resolution_breached_at IS NOT NULL) AS breached,
               (c.resolved_at IS NOT NULL OR c.reopen_count > 0) AS ever_resolved,
               c.reopen_count > 0 AS reopened
        FROM cases c
        WHERE c.opened_at >= :start AND c.opened_at < :end {_filters("c", "assignee")}"""
    return _report_sql(picked, _CASE_FIGURES, _CASE_OUTPUTS, bucket)


_CASE_STATEMENTS = {bucket: _typed(_cases_sql(bucket)) for bucket in ReportBucket}


async def cases(conn: Connection, query: ReportQuery) -> list[Mapping[str, Any]]:
    """The buckets in order (``bucket_start``/``bucket_end`` set), then the total (both None)."""
    return await _rows(conn, _CASE_STATEMENTS[query.bucket], query)
