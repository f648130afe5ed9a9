"""Opaque, signed cursors: what a list hands out as `next_cursor` and takes back as `cursor`.

A cursor is `base64url(json payload) . base64url(HMAC-SHA256(payload)[:16])`. Clients treat it as an
opaque string; any change to it (or a cursor from another server) fails the signature and is a 400
`invalid_cursor` before the payload is even parsed, so no tampered value ever reaches a query.

The key is the server's own secret (``server_secrets`` row, made by a migration), shared by every
process on the database; it is loaded once through the loader the app registers at start-up.
"""

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.errors import BadRequest, ServiceUnavailable

KeyLoader = Callable[[], Awaitable[bytes]]
MAX_CURSOR_LENGTH = 2000
_SIGNATURE_BYTES = 16

_key: bytes | None = None
_loader: KeyLoader | None = None


def use_key_loader(loader: KeyLoader) -> None:
    """Register how to fetch the signing key; it is fetched on first use and kept."""
    global _loader, _key
    _loader, _key = loader, None


def reset_key() -> None:
    """Forget the cached key (tests that switch databases)."""
    global _key
    _key = None


async def _signing_key() -> bytes:
    global _key
    if _key is None:
        if _loader is None:
            raise ServiceUnavailable("Cursors are not configured.", code="not_ready")
        _key = await _loader()
    return _key


async def preload() -> None:
    """Fetch the key now if the database answers; otherwise the first cursor fetches it."""
    try:
        await _signing_key()
    except Exception:  # the database may not be up yet; the first cursor fetches the key then
        return


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _invalid() -> BadRequest:
    return BadRequest(
        "The cursor is not valid; pass back a next_cursor exactly as this API returned it.",
        code="invalid_cursor",
    )


def _signature(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES])


async def encode(payload: Any) -> str:
    key = await _signing_key()
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode())
    return f"{body}.{_signature(key, body)}"


async def decode(cursor: str) -> Any:
    """The payload of a cursor this server made; ``invalid_cursor`` for anything else."""
    if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise _invalid()
    body, dot, signature = cursor.partition(".")
    if not dot:
        raise _invalid()
    key = await _signing_key()
    if not hmac.compare_digest(_signature(key, body), signature):
        raise _invalid()
    try:
        return json.loads(_unb64(body))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise _invalid() from exc
