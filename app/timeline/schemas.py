import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from app.core.schemas import OutputModel


class TimelineEntry(OutputModel):
    """One thing that happened to a customer: an interaction, a case, a case's status change, a
    feedback answer (and orders, ledger entries and segment changes as those domains land)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "interaction",
                    "id": "01938f5e-7c1a-7d2e-9b3f-4a5b6c7d8e9f",
                    "at": "2026-12-07T09:30:00Z",
                    "data": {
                        "channel": "phone",
                        "direction": "inbound",
                        "kind": "call",
                        "status": "completed",
                        "subject": "Delivery is late",
                        "agent": "li.na",
                        "outcome": "Promised a call-back",
                        "case_id": None,
                    },
                }
            ]
        }
    )

    kind: str = Field(
        description="What the entry is: `interaction`, `case` (opened), `case_transition` "
        "(a case's status change) or `feedback`; domains added later register their own."
    )
    id: uuid.UUID = Field(description="The id of the record (GET it from its own resource).")
    at: datetime = Field(description="When it happened; the timeline is newest first.")
    data: dict[str, Any] = Field(
        description="A summary of the record (its main fields, never personal data)."
    )
