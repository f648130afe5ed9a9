"""The interaction vocabularies, shared with cases and feedback (a case's or an answer's channel)."""

from enum import StrEnum


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    SMS = "sms"
    WECHAT = "wechat"
    SOCIAL = "social"
    CHAT = "chat"
    IN_PERSON = "in_person"
    WEB = "web"
    APP = "app"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class InteractionKind(StrEnum):
    CALL = "call"
    MESSAGE = "message"
    MEETING = "meeting"
    VISIT = "visit"
    NOTE = "note"


class InteractionStatus(StrEnum):
    # It happened.
    COMPLETED = "completed"
    # A follow-up still to make (has due_at).
    PLANNED = "planned"
    # A follow-up dropped.
    CANCELLED = "cancelled"
