"""HTTP conventions shared by every endpoint: ETags, conditional requests and JSON bodies."""

import json
import math
import re
from typing import Any

import numpy as np

from app.core.errors import PreconditionFailed
from app.core.schemas import MAX_JSON_DEPTH

_ETAG = re.compile(r'^\s*(W/)?"v(\d{1,18})"\s*$')
_ENTITY_TAG = re.compile(r'\s*((?:W/)?"[^"]*")\s*(?:,|$)')


class InvalidJSON(ValueError):
    """A body that is not JSON Kehu can read; the message says why, without echoing it."""


def load_json(body: bytes) -> Any:
    """Parse a request body as JSON (UTF-8, RFC 8259). Every failure, including nesting deep enough
    to exhaust the parser's recursion and integers past Python's digit limit, is ``InvalidJSON``."""
    return _parse(body, _FloatWatch())


class _FloatWatch:
    """json.loads hooks that note a non-finite number (NaN, Infinity, or a literal that overflows)."""

    __slots__ = ("finite",)

    def __init__(self) -> None:
        self.finite = True

    def parse_float(self, literal: str) -> float:
        value = float(literal)
        if math.isinf(value):
            self.finite = False
        return value

    def parse_constant(self, literal: str) -> float:
        self.finite = False
        return float(literal)


def _parse(body: bytes, floats: _FloatWatch) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSON(f"The body is not valid UTF-8 (at byte {exc.start}).") from None
    try:
        return json.loads(
            text, parse_float=floats.parse_float, parse_constant=floats.parse_constant
        )
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"The body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    except RecursionError:
        raise InvalidJSON("The body is nested too deeply to parse.") from None
    except ValueError as exc:  # e.g. an integer literal over 4,300 digits
        raise InvalidJSON(f"The body is not valid JSON: {str(exc)[:200]}") from None


def load_json_body(body: bytes) -> tuple[Any, bool]:
    """``load_json``, and whether the value is certainly plain: no string or key with a NUL or a
    lone surrogate, no non-finite number, no nesting past ``MAX_JSON_DEPTH``, i.e. nothing
    ``app.core.schemas.hostile_json`` would refuse. Decided from the text in ~5 ms for a 1,000-order
    batch, where walking the parsed value costs tens of microseconds per object; False means only
    that the walk must decide (the text has an escaped NUL or surrogate, or a harmless lookalike,
    or the body is small enough to walk for less)."""
    floats = _FloatWatch()
    value = _parse(body, floats)
    # A raw NUL or surrogate cannot get past strict UTF-8 decoding and JSON parsing: only escapes.
    # The text checks cost ~50 µs whatever the size: below ~1 KB walking the value is cheaper.
    plain = (
        len(body) >= _PLAIN_CHECK_MIN_BYTES
        and floats.finite
        and b"\\u0000" not in body
        and _SURROGATE_ESCAPE.search(body) is None
        and _nesting(body) <= MAX_JSON_DEPTH
    )
    return value, plain


# Bodies from this size on are checked as text (a 1,000-order batch is ~440 KB); smaller ones are
# walked once parsed (one order, ~440 bytes: 30 µs against 65 µs for the text checks).
_PLAIN_CHECK_MIN_BYTES = 2048
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# +1 for an opening bracket, -1 for a closing one, 0 for any other byte.
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[list(b"[{")] = 1
_BRACKET_STEP[list(b"]}")] = -1


def _nesting(text: bytes) -> int:
    """How deeply the containers of valid JSON text nest (1 for ``[]``), counted by numpy. A
    bracket inside a string does not count: with escaped backslashes and then escaped quotes
    dropped, every quote starts or ends a string, so a bracket is inside one when an odd number
    of quotes precede it."""
    bare = np.frombuffer(text.replace(b"\\\\", b"").replace(b'\\"', b""), dtype=np.uint8)
    quotes = np.flatnonzero(bare == ord('"'))
    steps = _BRACKET_STEP[bare]
    brackets = np.flatnonzero(steps)
    outside = (np.searchsorted(quotes, brackets) & 1) == 0
    return int(np.cumsum(steps[brackets[outside]], dtype=np.int64).max(initial=0))


def is_json_media_type(content_type: str | None) -> bool:
    """application/json or any application/*+json, parameters (charset) ignored."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def none_match(if_none_match: str | None, current: str) -> bool:
    """Whether ``If-None-Match`` matches the current ETag: weak comparison, ``*`` matches any
    (RFC 9110, 13.1.2)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = _ENTITY_TAG.findall(if_none_match)
    return _opaque(current) in {_opaque(t) for t in tags}


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header asks for; None when absent or ``*``. If-Match uses strong
    comparison (RFC 9110, 13.1.1), so a weak ETag (``W/"v3"``) never matches."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.match(if_match)
    if found is None:
        raise PreconditionFailed(
            'If-Match must be an ETag returned by this API, e.g. "v3".', code="invalid_if_match"
        )
    if found.group(1):
        raise PreconditionFailed(
            'If-Match uses strong comparison: a weak ETag (W/"...") never matches. Send the ETag '
            'as returned, e.g. "v3".',
            code="version_mismatch",
        )
    return int(found.group(2))


def check_version(current: int, expected: int | None, what: str) -> None:
    """Refuse a change made against another version of ``what`` (``If-Match``, or GraphQL's
    ``ifMatch``) with 412 ``version_mismatch``; ``expected`` None means unconditional."""
    if expected is not None and current != expected:
        raise PreconditionFailed(
            f"The {what} is at version {current}, not {expected}; fetch it again and retry.",
            code="version_mismatch",
        )
