import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from app.core.schemas import OutputModel

_CUSTOMER_ID = "01936f0e-5a4b-7c3d-9e2f-1a2b3c4d5e6f"
_EVENT: JsonDict = {
    "id": "01936f12-0c1d-7e2f-8a3b-4c5d6e7f8091",
    "position": 1042,
    "type": "customer.updated",
    "occurred_at": "2025-11-25T09:31:12.345000Z",
    "customer_id": _CUSTOMER_ID,
    "sequence": 2,
    "data": {
        "id": _CUSTOMER_ID,
        "first_name": "伟",
        "last_name": "王",
        "email": "wang.wei@example.com",
        "city": "Hangzhou",
        "version": 2,
        "redacted_fields": [],
    },
    "changes": {"city": ["Shanghai", "Hangzhou"]},
}


class EventOut(OutputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT]})

    id: uuid.UUID = Field(description="Event id; also the `webhook-id` of its deliveries.")
    position: int = Field(
        description="Place in the feed: increases in commit order, never reused. Within one "
        "customer it increases with `sequence`."
    )
    type: str = Field(examples=["customer.created"])
    occurred_at: datetime
    customer_id: uuid.UUID | None
    sequence: int | None = Field(description="Increases by one per customer, in commit order.")
    data: dict[str, Any] = Field(
        description="The subject after the change. Without the `pii:read` scope, PII fields "
        "(email, phone, birth_date) are null and `redacted_fields` lists the ones withheld."
    )
    changes: dict[str, Any] | None = Field(
        description="On updates: `{field: [before, after]}`; `[null, null]` for PII fields "
        "without `pii:read`."
    )


class EventPage(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"data": [_EVENT], "next_cursor": "eyJwIjoxMDQyfQ.c2lnbmF0dXJl", "has_more": False}
            ]
        }
    )

    data: list[EventOut]
    next_cursor: str = Field(
        description="Pass as `cursor` to continue. Never null: poll with it to get newer events."
    )
    has_more: bool = Field(description="More events are available right now.")


# Every event type Kehu records or will record (docs/webhooks.md), for filters that name types: a typo in
# a webhook endpoint's filter is refused rather than silently matching nothing.
EVENT_TYPES: tuple[str, ...] = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.merged",
    "customer.erased",
    "customer.lifecycle_changed",
    "interaction.logged",
    "interaction.updated",
    "follow_up.due",
    "case.opened",
    "case.updated",
    "case.status_changed",
    "case.sla_breached",
    "case.resolved",
    "feedback.received",
    "order.created",
    "order.refunded",
    "segment.member_entered",
    "segment.member_exited",
    "loyalty.points_earned",
    "loyalty.points_redeemed",
    "loyalty.points_expired",
    "loyalty.points_expiring",
    "loyalty.tier_changed",
    "loyalty.reward_redeemed",
    "coupon.issued",
    "coupon.redeemed",
    "referral.completed",
    "webhook.endpoint_disabled",
    "webhook.test",
)


def type_pattern_matches(pattern: str, event_type: str) -> bool:
    """``*`` matches every type, ``customer.*`` every ``customer.`` type, anything else itself."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
