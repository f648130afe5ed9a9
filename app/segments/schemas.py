"""The segment's shape, declared once: ``SegmentFields`` (what a client sets), the create and update
bodies, the stored segment, its memberships and the preview."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.schemas import InputModel, LongText, OutputModel, ShortText, field_error
from app.customers.schemas import CustomerOut
from app.rules.schemas import RULE_EXAMPLE, Rule

MAX_MEMBERS_PER_CALL = 1_000
MAX_SAMPLE = 100


class SegmentKind(StrEnum):
    """`dynamic`: the rule decides, and membership is kept current; `static`: members are added
    and removed by hand."""

    dynamic = "dynamic"
    static = "static"


class ExportFormat(StrEnum):
    """`ndjson`: one JSON object per line; `csv`: a header row, then one row per member."""

    ndjson = "ndjson"
    csv = "csv"


class SegmentFields(BaseModel):
    name: ShortText | None = Field(default=None, description="Unique among segments.")
    description: LongText | None = None
    rule: Rule | None = Field(
        default=None,
        description="Who belongs (a dynamic segment's rule; docs/rules.md). Changing it moves "
        "`rule_version` on and re-evaluates every customer.",
    )


_CREATE: dict[str, Any] = {
    "name": "Winter buyers in the north",
    "description": "Two winter orders in 90 days, northern provinces.",
    "kind": "dynamic",
    "rule": RULE_EXAMPLE,
}
_SEGMENT_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e70"
_OUT: dict[str, Any] = {
    **_CREATE,
    "id": _SEGMENT_ID,
    "rule_version": 1,
    "member_count": 1284,
    "refreshed_at": "2026-11-25T09:31:00Z",
    "version": 1,
    "created_at": "2026-11-25T09:30:00Z",
    "updated_at": "2026-11-25T09:30:00Z",
}


class SegmentCreate(SegmentFields, InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE]})

    name: ShortText = Field(description="Unique among segments.")
    kind: SegmentKind = SegmentKind.dynamic

    @model_validator(mode="after")
    def _rule_fits_kind(self) -> "SegmentCreate":
        if self.kind is SegmentKind.dynamic and self.rule is None:
            raise field_error("rule", "a dynamic segment needs a rule")
        if self.kind is SegmentKind.static and self.rule is not None:
            raise field_error("rule", "a static segment has no rule (its members are listed)")
        return self


class SegmentUpdate(SegmentFields, InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "Renamed", "rule": RULE_EXAMPLE}]}
    )


class SegmentOut(SegmentFields, OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_OUT]})

    id: uuid.UUID
    name: str
    kind: SegmentKind
    rule_version: int
    member_count: int = Field(description="Current members.")
    refreshed_at: datetime | None = Field(
        description="When a full refresh last compared every customer with the rule."
    )
    version: int
    created_at: datetime
    updated_at: datetime


class SegmentRefreshOut(OutputModel):
    """What a refresh moved."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"segment_id": _SEGMENT_ID, "entered": 12, "exited": 3, "member_count": 1293}
            ]
        }
    )

    segment_id: uuid.UUID
    entered: int
    exited: int
    member_count: int


class SegmentSort(StrEnum):
    """A sort order: the field, `-` first for descending."""

    created_at = "created_at"
    created_at_desc = "-created_at"


class SegmentPreview(InputModel):
    """A rule to try: how many customers it matches now, and some of them; nothing is saved."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"rule": RULE_EXAMPLE, "sample": 5}]})

    rule: Rule
    sample: int = Field(default=10, ge=0, le=MAX_SAMPLE, description="How many to show.")


class SegmentPreviewOut(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"count": 1284, "sample": []}]})

    count: int
    sample: list[CustomerOut] = Field(description="Some matching customers, newest first.")


_MEMBER: dict[str, Any] = {
    "customer_id": "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f",
    "segment_id": _SEGMENT_ID,
    "entered_at": "2026-11-25T09:31:00Z",
    "exited_at": None,
    "rule_version": 1,
}


class MembershipOut(OutputModel):
    """One stay of a customer in a segment."""

    model_config = ConfigDict(json_schema_extra={"examples": [_MEMBER]})

    customer_id: uuid.UUID
    segment_id: uuid.UUID
    entered_at: datetime
    exited_at: datetime | None = Field(description="Null while the customer is a member.")
    rule_version: int | None = Field(
        description="The rule version it entered under (null: added by hand)."
    )


class CustomerSegmentOut(OutputModel):
    """A segment a customer belongs to now."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "segment_id": _SEGMENT_ID,
                    "name": "Winter buyers in the north",
                    "kind": "dynamic",
                    "entered_at": "2026-11-25T09:31:00Z",
                    "rule_version": 1,
                }
            ]
        }
    )

    segment_id: uuid.UUID
    name: str
    kind: SegmentKind
    entered_at: datetime
    rule_version: int | None


class CustomerSegmentsOut(OutputModel):
    """The segments a customer belongs to now (all of them: a customer is in few)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "segment_id": _SEGMENT_ID,
                            "name": "Winter buyers in the north",
                            "kind": "dynamic",
                            "entered_at": "2026-11-25T09:31:00Z",
                            "rule_version": 1,
                        }
                    ]
                }
            ]
        }
    )

    data: list[CustomerSegmentOut]


class MembersChange(InputModel):
    """Customers to add to (POST) or remove from (DELETE) a static segment."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"customer_ids": [_MEMBER["customer_id"]]}]}
    )

    customer_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_MEMBERS_PER_CALL)


class MemberStatus(StrEnum):
    """What a members call did to one customer."""

    added = "added"
    already_member = "already_member"
    removed = "removed"
    not_member = "not_member"
    customer_not_found = "customer_not_found"


class MemberChangeResult(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"index": 0, "customer_id": _MEMBER["customer_id"], "status": "added"}]
        }
    )

    index: int
    customer_id: uuid.UUID
    status: MemberStatus


class MembersChangeResult(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"index": 0, "customer_id": _MEMBER["customer_id"], "status": "added"}
                    ],
                    "member_count": 1,
                }
            ]
        }
    )

    results: list[MemberChangeResult]
    member_count: int
