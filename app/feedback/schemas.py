"""The shape of feedback (survey answers) and of the survey a resolved case sends, declared once.

A score's scale depends on its kind: NPS 0–10, CSAT 1–5, CES 1–7 (``SCALES``). Feedback is
append-only: it is submitted (``FeedbackCreate``) or answers a survey (``SurveyAnswer``), never
changed.
"""

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from app.core import clock
from app.core.schemas import InputModel, OutputModel, ShortText, field_error, no_nul
from app.interactions.enums import Channel


class FeedbackKind(StrEnum):
    """What was asked: `nps` (0–10, how likely to recommend), `csat` (1–5, how satisfied), `ces`
    (1–7, how easy it was)."""

    NPS = "nps"
    CSAT = "csat"
    CES = "ces"


# The scale of each kind, lowest and highest score.
SCALES: dict[FeedbackKind, tuple[int, int]] = {
    FeedbackKind.NPS: (0, 10),
    FeedbackKind.CSAT: (1, 5),
    FeedbackKind.CES: (1, 7),
}
MAX_COMMENT = 4_000
# How far ahead of the server's clock a submitted_at may be (a partner's clock drifts); such a time
# is stored as now.
CLOCK_SKEW = timedelta(minutes=1)
SURVEY_TOKEN_PREFIX = "srv_"

Comment = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_COMMENT),
    AfterValidator(no_nul),
]
CategorySlug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]
Source = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00]+$"),
]
ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]+$"),
]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must have a time zone offset (RFC 3339), e.g. 2025-11-25T09:30:00Z")
    return value


# A point in time: an RFC 3339 time with its offset.
Aware = Annotated[datetime, AfterValidator(_aware)]
Score = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=10,
        description="NPS 0–10, CSAT 1–5, CES 1–7 (by `kind`); outside the kind's scale: 422.",
    ),
]


def scale_problem(kind: FeedbackKind, score: int) -> str | None:
    """Why ``score`` is not on the scale of ``kind``; None when it is."""
    low, high = SCALES[kind]
    if low <= score <= high:
        return None
    return f"a {kind.value.upper()} score is {low} to {high}, not {score}"


_CUSTOMER_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
_CASE_ID = "01937a2c-1b2d-7e4f-8a9b-0c1d2e3f4a5b"
_FEEDBACK_ID = "01937b10-7c6d-7a1e-9f2b-3c4d5e6f7a8b"
_SURVEY_ID = "01937a90-2e3f-7b4c-8d5e-6f7a8b9c0d1e"
_CREATE: JsonDict = {
    "customer_id": _CUSTOMER_ID,
    "kind": "nps",
    "score": 9,
    "comment": "Fast delivery, friendly support.",
    "category": "logistics",
    "channel": "wechat",
    "agent": "li.na",
    "submitted_at": "2025-11-25T09:30:00Z",
    "source": "wechat-mini-program",
    "external_id": "survey-88231",
}
_CREATE_MINIMAL: JsonDict = {"customer_id": _CUSTOMER_ID, "kind": "csat", "score": 4}
_OUT: JsonDict = {
    **_CREATE,
    "id": _FEEDBACK_ID,
    "case_id": None,
    "interaction_id": None,
    "survey_id": None,
    "created_at": "2025-11-25T09:30:01Z",
}
_OUT_SURVEY: JsonDict = {
    "id": "01937b22-4d5e-7f6a-8b7c-9d0e1f2a3b4c",
    "customer_id": _CUSTOMER_ID,
    "kind": "csat",
    "score": 5,
    "comment": None,
    "category": "billing",
    "channel": "phone",
    "agent": "zhang.min",
    "case_id": _CASE_ID,
    "interaction_id": None,
    "survey_id": _SURVEY_ID,
    "source": None,
    "external_id": None,
    "submitted_at": "2025-11-26T10:00:00Z",
    "created_at": "2025-11-26T10:00:00Z",
}


class FeedbackFields(BaseModel):
    """Every field a client sets on a survey answer."""

    customer_id: uuid.UUID = Field(description="The customer who answered.")
    kind: FeedbackKind
    score: Score
    comment: Comment | None = Field(
        default=None, description=f"Free text, at most {MAX_COMMENT:,} characters."
    )
    category: CategorySlug | None = Field(
        default=None,
        description="What it is about, a slug `^[a-z0-9_]{1,40}$`; usually a case category "
        "(`product_quality`, `service_attitude`, `logistics`, `billing`, `other`).",
    )
    channel: Channel | None = Field(default=None, description="Where the answer was given.")
    agent: ShortText | None = Field(
        default=None,
        description="The agent the answer is about. When left out: the linked case's assignee, "
        "else the linked interaction's agent.",
    )
    case_id: uuid.UUID | None = Field(
        default=None, description="A case of the same customer the answer is about."
    )
    interaction_id: uuid.UUID | None = Field(
        default=None, description="An interaction of the same customer the answer is about."
    )
    source: Source | None = Field(
        default=None, description="The system the answer came from, e.g. `wechat-mini-program`."
    )
    external_id: ExternalId | None = Field(
        default=None,
        description="Its id in `source` (needs `source`). The same (`source`, `external_id`) is "
        "the same answer: sent again it is not stored twice.",
    )


class FeedbackCreate(FeedbackFields, InputModel):
    """POST /v1/feedback."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE, _CREATE_MINIMAL]})

    submitted_at: Aware | None = Field(
        default=None,
        description="When it was answered (default: now); may be in the past, not in the future.",
    )

    @model_validator(mode="after")
    def _rules(self) -> "FeedbackCreate":
        problem = scale_problem(self.kind, self.score)
        if problem is not None:
            raise field_error("score", problem, self.score)
        if self.submitted_at is not None:
            now = clock.now()
            if self.submitted_at > now + CLOCK_SKEW:
                raise field_error(
                    "submitted_at", "must not be in the future", self.submitted_at.isoformat()
                )
            self.submitted_at = min(self.submitted_at, now)
        if self.external_id is not None and self.source is None:
            raise field_error("source", "is required with external_id")
        return self


class FeedbackOut(FeedbackFields, OutputModel):
    """A stored answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [_OUT, _OUT_SURVEY]})

    id: uuid.UUID
    score: int = Field(description="NPS 0–10, CSAT 1–5, CES 1–7 (by `kind`).")
    comment: str | None = Field(default=None, description="Free text.")
    category: str | None = Field(default=None, description="What it is about (a slug).")
    agent: str | None = Field(default=None, description="The agent the answer is about.")
    source: str | None = None
    external_id: str | None = None
    survey_id: uuid.UUID | None = Field(
        default=None, description="The survey it answers (a resolved case's survey link)."
    )
    submitted_at: datetime = Field(description="When it was answered.")
    created_at: datetime = Field(description="When Kehu stored it.")


STORED_FIELDS = tuple(FeedbackOut.model_fields)


class FeedbackSort(StrEnum):
    """A sort order: the field, `-` first for descending."""

    submitted_at = "submitted_at"
    submitted_at_desc = "-submitted_at"


FilterText = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]


class FeedbackFilter(BaseModel):
    """Which answers a list returns: every filter is optional, and all given must hold."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    customer_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    kind: FeedbackKind | None = None
    category: CategorySlug | None = None
    channel: Channel | None = None
    agent: FilterText | None = None
    submitted_after: Aware | None = Field(
        default=None, description="Submitted at or after this time."
    )
    submitted_before: Aware | None = Field(default=None, description="Submitted before this time.")


# ------------------------------------------------------------------------------------------ surveys


class SurveyOut(OutputModel):
    """What the survey page needs to render a survey (nothing about the customer)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "csat",
                    "scale_min": 1,
                    "scale_max": 5,
                    "expires_at": "2025-12-10T10:00:00Z",
                    "expired": False,
                    "answered": False,
                }
            ]
        }
    )

    kind: FeedbackKind
    scale_min: int = Field(description="The lowest score of the kind's scale.")
    scale_max: int = Field(description="The highest score of the kind's scale.")
    expires_at: datetime = Field(description="Answers are taken until then.")
    expired: bool = Field(description="Whether it can no longer be answered because it expired.")
    answered: bool = Field(description="Whether it has been answered (it is answered once).")


class SurveyAnswer(InputModel):
    """POST /v1/feedback/surveys/{token}: the answer; kind, customer and case come from the
    survey."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"score": 5, "comment": "Solved in one call."}, {"score": 2}]
        }
    )

    score: Score
    comment: Comment | None = Field(
        default=None, description=f"Free text, at most {MAX_COMMENT:,} characters."
    )


class SurveyAnswerOut(OutputModel):
    """The answer as stored (only what the person answering sent)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "csat",
                    "score": 5,
                    "comment": "Solved in one call.",
                    "submitted_at": "2025-11-26T10:00:00Z",
                }
            ]
        }
    )

    kind: FeedbackKind
    score: int
    comment: str | None
    submitted_at: datetime
