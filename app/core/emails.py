"""Email addresses as stored: checked, normalised, lower-cased.

``email-validator`` (through pydantic's ``validate_email``) is the judge of what is valid, but it
costs ~85 µs per address, mostly on Unicode and IDNA handling that plain ASCII addresses never need.
``normalized_email`` first tries a strict ASCII pattern that accepts only addresses
email-validator accepts too (tests/core/test_emails.py checks that property with generated
addresses); everything else (Unicode, quoted local parts, display names, anything odd) goes to
email-validator, which decides and words the error.
"""

import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic.networks import validate_email

# A dot-atom local part of common characters (no leading, trailing or double dots), and a domain of
# at least two LDH labels (no label starting or ending with a hyphen, no "--" at all, so no
# Punycode) ending in an alphabetic top-level label.
_PLAIN = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:-?[A-Za-z0-9])*\.)+[A-Za-z]{2,63}"
)
_SPECIAL = frozenset(SPECIAL_USE_DOMAIN_NAMES)
MAX_LOCAL = 64
MAX_LABEL = 63
MAX_EMAIL = 254


def plain_ascii_email(value: str) -> bool:
    """Whether ``value`` is an address the fast path may accept without email-validator."""
    if len(value) > MAX_EMAIL or _PLAIN.fullmatch(value) is None:
        return False
    local, _, domain = value.partition("@")
    labels = domain.lower().split(".")
    return (
        len(local) <= MAX_LOCAL
        and all(len(label) <= MAX_LABEL for label in labels)
        and not any(label in _SPECIAL for label in labels[-2:])
    )


def normalized_email(value: str) -> str:
    """The address lower-cased; raises pydantic's ``value is not a valid email address`` error
    (as ``EmailStr`` does) when email-validator refuses it."""
    if plain_ascii_email(value):
        return value.lower()
    return validate_email(value)[1].lower()
