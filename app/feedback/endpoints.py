"""Feedback over REST: survey answers (``/feedback``, scopes interactions:write to submit and
interactions:read to read) and the survey links a resolved case sends (``/feedback/surveys/{token}``,
no API key: the token is the credential)."""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Path, Query, Response, status

from app.api.deps import KehuRoute, ScopeDep
from app.api.problems import problem_doc
from app.api.responses import json_response, page_response
from app.api.routing import resource_router
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut
from app.feedback import service
from app.feedback.schemas import (
    FeedbackCreate,
    FeedbackFilter,
    FeedbackOut,
    FeedbackSort,
    SurveyAnswer,
    SurveyAnswerOut,
    SurveyOut,
)


class _SurveyLinkRoute(KehuRoute):
    requires_key = False  # the survey token in the path is the credential


router = resource_router("/feedback", "feedback")


def _survey_route(
    path: str, method: str, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@router.<method>`` for a route that takes no API key."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(
            path, endpoint, methods=[method], route_class_override=_SurveyLinkRoute, **kwargs
        )
        return endpoint

    return register


SurveyToken = Annotated[
    str, Path(description="The survey link's token (`srv_...`), from the `case.resolved` event.")
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Submit feedback",
    description="Stores a survey answer (scope `interactions:write`; there is no feedback scope). "
    "`score` must be on the kind's scale (NPS 0–10, CSAT 1–5, CES 1–7). A `case_id` or "
    "`interaction_id` must belong to the same customer (422 `case_not_found` / "
    "`interaction_not_found`); an unknown customer is 422 `customer_not_found`. The same "
    "(`source`, `external_id`) sent again answers **200** with the answer stored the first time "
    "(nothing is stored twice); for another customer it is 409 `external_id_conflict`. "
    "Append-only: an answer is never changed. Emits `feedback.received`.",
    response_model=FeedbackOut,
    responses={
        409: problem_doc(
            "`external_id_conflict`: this (`source`, `external_id`) is another customer's answer."
        )
    },
)
async def submit_feedback(body: FeedbackCreate, scope: ScopeDep) -> Response:
    submitted = await service.submit_feedback(scope.conn, scope.caller, body)
    answer = submitted.feedback
    code = status.HTTP_201_CREATED if submitted.created else status.HTTP_200_OK
    return json_response(answer, code, Location=f"/v1/feedback/{answer.id}")


@router.get(
    "",
    summary="List feedback",
    description="Newest first by default (scope `interactions:read`).",
    response_model=PageOut[FeedbackOut],
)
async def list_feedback(
    scope: ScopeDep,
    filters: Annotated[FeedbackFilter, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    sort: Annotated[FeedbackSort, Query(description="Field, `-` for descending.")] = (
        FeedbackSort.submitted_at_desc
    ),
) -> Response:
    page = await service.list_feedback(
        scope.conn, scope.caller, filters, sort=sort, limit=limit, cursor=cursor
    )
    return page_response(page)


@_survey_route(
    "/surveys/{token}",
    "GET",
    summary="Get a survey",
    description="What a survey page needs to show the survey behind a link: its kind, scale, "
    "expiry and whether it is answered; nothing about the customer. **No API key**: the token is "
    "the credential (an unknown token is 404 `survey_not_found`).",
    response_model=SurveyOut,
)
async def get_survey(token: SurveyToken, scope: ScopeDep) -> Response:
    return json_response(await service.get_survey(scope.conn, token))


@_survey_route(
    "/surveys/{token}",
    "POST",
    status_code=status.HTTP_201_CREATED,
    summary="Answer a survey",
    description="Takes the survey's one answer (`score` on its kind's scale, optional `comment`); "
    "kind, customer and case come from the survey, category, channel and agent from the case. "
    "**No API key**: the token is the credential (an unknown token is 404 `survey_not_found`). "
    "Answered once, also under concurrent requests; emits `feedback.received`.",
    response_model=SurveyAnswerOut,
    responses={
        409: problem_doc("`survey_already_answered`: the survey has been answered."),
        410: problem_doc("`survey_expired`: the survey link has expired."),
    },
)
async def answer_survey(token: SurveyToken, body: SurveyAnswer, scope: ScopeDep) -> Response:
    answer = await service.answer_survey(scope.conn, token, body)
    return json_response(answer, status.HTTP_201_CREATED)


@router.get(
    "/{feedback_id}",
    summary="Get feedback",
    description="One answer (scope `interactions:read`).",
    response_model=FeedbackOut,
)
async def get_feedback(feedback_id: uuid.UUID, scope: ScopeDep) -> Response:
    return json_response(await service.get_feedback(scope.conn, scope.caller, feedback_id))
