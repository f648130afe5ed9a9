"""HTTP conventions shared by every endpoint: ETags and list query parameters."""

import re

from app.core.errors import PreconditionFailed

_ETAG = re.compile(r'^\s*(?:W/)?"v(\d{1,18})"\s*$')


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header asks for; None when absent or ``*``."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.match(if_match)
    if found is None:
        raise PreconditionFailed(
            'If-Match must be an ETag returned by this API, e.g. "v3".', code="invalid_if_match"
        )
    return int(found.group(1))
