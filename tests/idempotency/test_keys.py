"""Which idempotency keys are accepted, and where a key is refused (no database needed)."""

import pytest

from app.core.errors import BadRequest
from app.idempotency import service


@pytest.mark.parametrize("key", ["a", "signup-42", "k" * 255, "order 17/3", "~!@#"])
def test_header_keys_accepted(key: str) -> None:
    assert service.requested_key(key) == key


@pytest.mark.parametrize("key", ["", "k" * 256, " lead", "trail ", "tab\there", "ключ", "\x7f"])
def test_malformed_header_keys_are_400(key: str) -> None:
    with pytest.raises(BadRequest) as raised:
        service.requested_key(key)
    assert raised.value.code == "invalid_idempotency_key"


def test_graphql_keys_may_be_any_printable_text() -> None:
    assert service.check_key("ключ", "idempotencyKey") == "ключ"
    with pytest.raises(BadRequest):
        service.check_key("a\nb", "idempotencyKey")


def test_no_key_is_no_key_even_where_keys_are_refused() -> None:
    assert service.requested_key(None) is None
    assert service.requested_key(None, stores_responses=False) is None


def test_operations_that_never_store_responses_refuse_a_key() -> None:
    with pytest.raises(BadRequest) as raised:
        service.requested_key("key-1", stores_responses=False)
    assert raised.value.code == "idempotency_not_supported"
    # A malformed key is reported as such first.
    with pytest.raises(BadRequest) as malformed:
        service.requested_key("k" * 256, stores_responses=False)
    assert malformed.value.code == "invalid_idempotency_key"


async def test_without_a_key_it_just_runs() -> None:
    async def run() -> str:
        return "ran"

    async def never() -> str:
        raise AssertionError("no fingerprint without a key")

    def unused(_: object) -> service.Answer:
        raise AssertionError("nothing is stored without a key")

    result = await service.run_once(
        None,  # type: ignore[arg-type]  # no key: the store is never touched
        None,  # type: ignore[arg-type]
        None,
        never,
        run,
        answer=unused,
        replay=unused,
    )
    assert result == "ran"
