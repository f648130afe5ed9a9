"""Imports every domain's models so ``Base.metadata`` is complete (Alembic and the drift test use it)."""

from app.apikeys.models import ApiKey
from app.customers.models import Customer
from app.db.base import Base
from app.db.secrets import ServerSecret
from app.events.models import CustomerEventSequence, Event, EventFeedState
from app.idempotency.models import IdempotencyRecord

__all__ = [
    "ApiKey",
    "Base",
    "Customer",
    "CustomerEventSequence",
    "Event",
    "EventFeedState",
    "IdempotencyRecord",
    "ServerSecret",
]
