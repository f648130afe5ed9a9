"""API keys and scopes: who is calling, and what they may do. Pure logic, no HTTP and no SQL."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Final

from app.core.errors import Forbidden

SCOPES: Final[dict[str, str]] = {
    "customers:read": "Read customer profiles (PII fields need pii:read).",
    "customers:write": "Create, update and delete customers.",
    "pii:read": "See email, phone, birth date and consent-bearing fields in reads and events.",
    "interactions:read": "Read interactions and follow-ups.",
    "interactions:write": "Log and update interactions.",
    "cases:read": "Read service cases.",
    "cases:write": "Open, update and transition service cases.",
    "orders:read": "Read orders.",
    "orders:write": "Record orders and refunds.",
    "analytics:read": "Read customer metrics, models and recommendations.",
    "analytics:refresh": "Recompute analytics on demand.",
    "segments:read": "Read segments and members.",
    "segments:write": "Create and change segments.",
    "loyalty:read": "Read loyalty balances, ledgers and rewards.",
    "loyalty:write": "Earn, redeem and adjust points; manage rewards and coupons.",
    "webhooks:manage": "Manage webhook endpoints and deliveries.",
    "imports:write": "Run imports.",
    "events:read": "Read the event feed.",
    "admin": "Everything, including API keys and the audit log.",
}

KEY_PREFIX: Final = "kehu_"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated API key behind a request."""

    key_id: uuid.UUID
    name: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        """Whether the key grants ``scope``: admin grants everything, and ``<resource>:write``
        includes ``<resource>:read`` (pii:read is only ever granted by itself or admin)."""
        if "admin" in self.scopes or scope in self.scopes:
            return True
        resource, _, action = scope.partition(":")
        return action == "read" and f"{resource}:write" in self.scopes

    def require(self, *scopes: str) -> None:
        missing = [s for s in scopes if not self.has(s)]
        if missing:
            raise Forbidden(
                f"This API key lacks the scope(s): {', '.join(missing)}.", code="missing_scope"
            )


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of a key, stored and shown so people can tell their keys apart."""
    return key[: len(KEY_PREFIX) + 6]


def unknown_scopes(scopes: list[str]) -> list[str]:
    return [s for s in scopes if s not in SCOPES]
