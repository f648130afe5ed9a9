"""Feedback over GraphQL: the Relay ``Feedback`` node, ``feedback(id)``, the ``feedbackList``
connection and ``submitFeedback``, on the same service as REST.

Survey links are answered over REST only (``POST /v1/feedback/surveys/{token}``): every GraphQL
request needs an API key, and a survey link is answered without one.
"""

import uuid
from typing import Annotated, Any

import strawberry
from pydantic import BaseModel
from strawberry import relay

from app.api.graphql.context import GraphQLInfo
from app.api.graphql.idempotency import run_once
from app.api.graphql.ids import parse_id
from app.api.graphql.inputs import validated
from app.api.graphql.owned import OwnedList
from app.api.graphql.pagination import check_page, connection
from app.api.graphql.pydantic_types import graphql_enum, input_type, object_type, provided
from app.core.auth import Caller
from app.core.pagination import DEFAULT_LIMIT, Page
from app.db import Connection, read_connection, unit_of_work
from app.feedback import repository, service
from app.feedback.loaders import feedback_by_id
from app.feedback.schemas import FeedbackCreate, FeedbackFilter, FeedbackOut, FeedbackSort

TYPE_NAME = "Feedback"


def parse_feedback_id(value: str) -> uuid.UUID:
    return parse_id(TYPE_NAME, value)


async def _load_nodes(info: GraphQLInfo, node_ids: list[str]) -> list[FeedbackOut | None]:
    ids = [parse_feedback_id(node_id) for node_id in node_ids]
    return await info.context.loader(feedback_by_id).load_many(ids)


FeedbackType: Any = object_type(FeedbackOut, name=TYPE_NAME, node=_load_nodes)
FeedbackCreateInput: Any = input_type(
    FeedbackCreate, name="FeedbackCreateInput", description="The same fields as the REST body."
)
FeedbackFilterInput: Any = input_type(FeedbackFilter, name="FeedbackFilter")
FeedbackSortEnum: Any = graphql_enum(FeedbackSort)


@strawberry.type(name="FeedbackEdge")
class FeedbackEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this answer.")
    node: FeedbackType


@strawberry.type(name="FeedbackConnection")
class FeedbackConnection:
    edges: list[FeedbackEdge]
    page_info: relay.PageInfo


@strawberry.type
class FeedbackQueries:
    @strawberry.field(
        description="A survey answer by its global id or raw UUID; null if not found (scope "
        "`interactions:read`)."
    )  # type: ignore[untyped-decorator]
    async def feedback(self, info: GraphQLInfo, id: strawberry.ID) -> FeedbackType | None:
        return await info.context.loader(feedback_by_id).load(parse_feedback_id(id))

    @strawberry.field(
        description="Survey answers, newest first by default (a Relay connection; scope "
        "`interactions:read`)."
    )  # type: ignore[untyped-decorator]
    async def feedback_list(
        self,
        info: GraphQLInfo,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        filter: Annotated[
            FeedbackFilterInput | None,
            strawberry.argument(description="Every filter given must hold (as REST's)."),
        ] = None,
        sort: FeedbackSortEnum = FeedbackSort.submitted_at_desc,
    ) -> FeedbackConnection:
        check_page(first, after)
        filters = validated(FeedbackFilter, provided(filter) or {}, "filter")
        async with read_connection() as conn:
            page = await service.list_feedback(
                conn,
                info.context.caller,
                filters,
                sort=FeedbackSort(sort),
                limit=first,
                cursor=after,
            )
        return await connection(page, after, FeedbackEdge, FeedbackConnection)


class _Submitted(BaseModel):
    """What submitFeedback stores for its idempotencyKey."""

    feedback: FeedbackOut
    created: bool


@strawberry.type
class SubmitFeedbackPayload:
    feedback: FeedbackType
    created: bool = strawberry.field(
        description="False when the same (source, externalId) had been submitted before: this is "
        "the answer stored then."
    )
    replayed: bool = strawberry.field(
        description="True when this is the stored result of an earlier call with the same "
        "idempotencyKey."
    )


@strawberry.type
class FeedbackMutations:
    @strawberry.mutation(
        description="Submit a survey answer (as `POST /v1/feedback`; scope `interactions:write`)."
    )  # type: ignore[untyped-decorator]
    async def submit_feedback(
        self,
        info: GraphQLInfo,
        input: FeedbackCreateInput,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="Retry-safe key (≤ 255 printable characters, kept 24 h): the same key "
                "and input return the stored result instead of submitting again."
            ),
        ] = None,
    ) -> SubmitFeedbackPayload:
        caller = info.context.caller
        arguments = provided(input)
        payload = validated(FeedbackCreate, arguments)
        async with unit_of_work() as conn:

            async def submit() -> _Submitted:
                submitted = await service.submit_feedback(conn, caller, payload)
                return _Submitted(feedback=submitted.feedback, created=submitted.created)

            result, replayed = await run_once(
                conn, caller, idempotency_key, "submitFeedback", arguments, _Submitted, submit
            )
        return SubmitFeedbackPayload(
            feedback=result.feedback, created=result.created, replayed=replayed
        )


# ------------------------------------------------------------------------------- on the customer


async def _next_customer_page(
    conn: Connection, caller: Caller, customer_id: uuid.UUID, limit: int, cursor: str
) -> Page[FeedbackOut]:
    return await service.list_feedback(
        conn,
        caller,
        FeedbackFilter(customer_id=customer_id),
        sort=FeedbackSort.submitted_at_desc,
        limit=limit,
        cursor=cursor,
    )


_OF_CUSTOMER = OwnedList(
    scope="interactions:read",
    query=lambda: repository.list_query(FeedbackFilter(), FeedbackSort.submitted_at_desc),
    sort=FeedbackSort.submitted_at_desc.value,
    from_row=repository.feedback_from_row,
    next_page=_next_customer_page,
)


CUSTOMER_FIELD = _OF_CUSTOMER.customer_field(
    "feedback",
    FeedbackEdge,
    FeedbackConnection,
    description="The customer's survey answers, newest first (as `GET /v1/feedback?customer_id=`).",
)
