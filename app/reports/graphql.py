"""The service reports over GraphQL: ``satisfactionReport`` and ``caseReport``, with the REST
endpoints' parameters and figures (types generated from the same pydantic models)."""

from typing import Annotated, Any

import strawberry

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.inputs import validated
from app.api.graphql.pydantic_types import graphql_enum, object_type
from app.db import read_connection
from app.interactions.enums import Channel
from app.reports import service
from app.reports.schemas import CaseReport, ReportBucket, ReportQuery, SatisfactionReport

SatisfactionReportType: Any = object_type(SatisfactionReport, name="SatisfactionReport")
CaseReportType: Any = object_type(CaseReport, name="CaseReport")
ReportBucketEnum: Any = graphql_enum(ReportBucket)
ChannelEnum: Any = graphql_enum(Channel)
_FIELDS = ReportQuery.model_fields

From = Annotated[
    str | None, strawberry.argument(name="from", description=_FIELDS["from_"].description)
]
To = Annotated[str | None, strawberry.argument(description=_FIELDS["to"].description)]
Bucket = Annotated[ReportBucketEnum, strawberry.argument(description=_FIELDS["bucket"].description)]
TimeZone = Annotated[str, strawberry.argument(description=_FIELDS["time_zone"].description)]
Category = Annotated[str | None, strawberry.argument(description=_FIELDS["category"].description)]
ChannelArgument = Annotated[
    ChannelEnum | None, strawberry.argument(description=_FIELDS["channel"].description)
]
Agent = Annotated[str | None, strawberry.argument(description=_FIELDS["agent"].description)]


def _query(**arguments: Any) -> ReportQuery:
    given = {name: value for name, value in arguments.items() if value is not None}
    if "channel" in given:
        given["channel"] = Channel(given["channel"]).value
    given["bucket"] = ReportBucket(given["bucket"]).value
    return validated(ReportQuery, given, "arguments")


@strawberry.type
class ReportQueries:
    @strawberry.field(
        description="NPS, CSAT and CES of the feedback submitted in [from, to), in total and per "
        "bucket (as `GET /v1/reports/satisfaction`; scope `interactions:read`)."
    )  # type: ignore[untyped-decorator]
    async def satisfaction_report(
        self,
        info: GraphQLInfo,
        from_: From = None,
        to: To = None,
        bucket: Bucket = ReportBucket.day,
        time_zone: TimeZone = "UTC",
        category: Category = None,
        channel: ChannelArgument = None,
        agent: Agent = None,
    ) -> SatisfactionReportType:
        query = _query(
            **{"from": from_},
            to=to,
            bucket=bucket,
            time_zone=time_zone,
            category=category,
            channel=channel,
            agent=agent,
        )
        async with read_connection() as conn:
            return await service.satisfaction_report(conn, info.context.caller, query)

    @strawberry.field(
        description="Volume, timing, SLA and reopen figures of the cases opened in [from, to), in "
        "total and per bucket (as `GET /v1/reports/cases`; scope `cases:read`)."
    )  # type: ignore[untyped-decorator]
    async def case_report(
        self,
        info: GraphQLInfo,
        from_: From = None,
        to: To = None,
        bucket: Bucket = ReportBucket.day,
        time_zone: TimeZone = "UTC",
        category: Category = None,
        channel: ChannelArgument = None,
        agent: Agent = None,
    ) -> CaseReportType:
        query = _query(
            **{"from": from_},
            to=to,
            bucket=bucket,
            time_zone=time_zone,
            category=category,
            channel=channel,
            agent=agent,
        )
        async with read_connection() as conn:
            return await service.case_report(conn, info.context.caller, query)
