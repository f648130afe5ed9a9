import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from app.core.schemas import OutputModel


class EventOut(OutputModel):
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
    data: list[EventOut]
    next_cursor: str = Field(
        description="Pass as `cursor` to continue. Never null: poll with it to get newer events."
    )
    has_more: bool = Field(description="More events are available right now.")
