"""The email fast path accepts only what email-validator accepts, normalised the same way."""

import string

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.emails import normalized_email, plain_ascii_email

LOCAL_CHARS = string.ascii_letters + string.digits + "._+-%!#'"
DOMAIN_CHARS = string.ascii_letters + string.digits + ".-"
addresses = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(LOCAL_CHARS, min_size=0, max_size=70),
    st.text(DOMAIN_CHARS, min_size=0, max_size=80),
)

# Near-valid addresses (labels, dots and hyphens in odd places), so most reach the fast path.
label = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=70)
likely = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    st.text(LOCAL_CHARS, min_size=1, max_size=70),
    st.lists(label, min_size=1, max_size=4),
    st.sampled_from(["com", "cn", "de", "io", "test", "local", "c0m", "museum", "x"]),
)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(addresses, likely))
def test_fast_path_accepts_only_what_email_validator_accepts(address: str) -> None:
    if plain_ascii_email(address):
        checked = validate_email(address, check_deliverability=False)
        assert checked.normalized.lower() == normalized_email(address)


def test_the_property_test_reaches_the_fast_path() -> None:
    """Guards the test above against generating nothing the fast path accepts."""
    accepted = 0

    @settings(max_examples=500, deadline=None, database=None)
    @given(likely)
    def count(address: str) -> None:
        nonlocal accepted
        accepted += plain_ascii_email(address)

    count()
    assert accepted >= 50


@pytest.mark.parametrize(
    "address",
    [
        "wei.wang@example.com",
        "Wei.Wang+crm@Example.COM",
        "a_b-c@mail.example.co.uk",
        "x@y.io",
    ],
)
def test_common_addresses_take_the_fast_path(address: str) -> None:
    assert plain_ascii_email(address)
    assert normalized_email(address) == address.lower()


@pytest.mark.parametrize(
    "address",
    [
        "a..b@example.com",  # double dot
        ".a@example.com",
        "a@localhost",  # special-use and single-label domains
        "a@host.test",
        "a@-example.com",
        "a@example.c0m",
        "a@xn--bcher-kva.example",  # Punycode: left to email-validator
        "王伟@example.com",  # Unicode: left to email-validator
        "a" * 65 + "@example.com",
    ],
)
def test_the_rest_goes_to_email_validator(address: str) -> None:
    assert not plain_ascii_email(address)
    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match="not a valid email address"):
            normalized_email(address)
    else:
        assert normalized_email(address) == expected.lower()
