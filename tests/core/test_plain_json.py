"""``load_json_body``'s verdict that a body is plain lets input models skip their hostile-JSON walk,
so it must never vouch for a value the walk would refuse; and ``Money``'s amount normalisation must
equal the Decimal formatting it replaces."""

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.http import load_json_body
from app.core.schemas import MAX_JSON_DEPTH, MONEY_PATTERN, _two_decimals, hostile_json

# Strings and keys drawn from every code point, surrogates and NUL included.
_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=8)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text
    | st.sampled_from(["[", "]", "{", "}", '"', "\\", '\\"', "[[[[", "NaN", ":1e999"])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=40,
)


PADDING = "p" * 2048


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


@settings(max_examples=400, deadline=None)
@given(_values, st.booleans())
def test_a_plain_body_is_one_the_walk_accepts(value: Any, ascii_only: bool) -> None:
    try:
        # allow_nan: NaN and Infinity literals, as hostile clients send them; padded past the size
        # from which bodies are checked as text.
        text = json.dumps([value, PADDING], ensure_ascii=ascii_only, allow_nan=True)
        body = text.encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return
    try:
        parsed, plain = load_json_body(body)
    except ValueError:
        return  # not JSON Kehu reads (e.g. a raw surrogate in UTF-8): refused before any model
    if plain:
        assert hostile_json(parsed) is None, text


def test_hostile_bodies_are_not_plain() -> None:
    for body in [
        b'{"a": "x\\u0000y"}',
        b'{"a\\u0000": 1}',
        b'{"a": "\\ud800"}',
        b'{"\\udfff": 1}',
        b'{"a": NaN}',
        b"[Infinity]",
        b"[-Infinity]",
        b"[1e400]",
        b"[-2.5E+309]",
        b"[" + b"9" * 400 + b".5]",
        json.dumps(_nested(MAX_JSON_DEPTH + 1)).encode(),
    ]:
        body = b'{"padding": "' + PADDING.encode() + b'", "value": ' + body + b"}"
        parsed, plain = load_json_body(body)
        assert hostile_json(parsed) is not None, body
        assert not plain, body


def test_ordinary_bodies_are_plain() -> None:
    """Or the fast path would never run: brackets, quotes and escapes inside strings, non-ASCII
    text sent escaped, hex in ids and ordinary numbers do not make a body suspect."""
    order = {
        "customer_id": "0193e0a7-5e12-7e40-8e3d-1e2e3e4e5e6e",
        "name": '乌龙 "[best]" {tea} \\ back',
        "items": [{"quantity": 2, "price": 1.5e10, "tags": ["a]", "{b"]}],
    }
    for text in (json.dumps([order] * 20), json.dumps([order] * 20, ensure_ascii=False)):
        _, plain = load_json_body(text.encode())
        assert plain, text
    _, plain = load_json_body(json.dumps([_nested(MAX_JSON_DEPTH - 2), PADDING]).encode())
    assert plain
    # A small body is walked instead: the text checks would cost more.
    _, plain = load_json_body(json.dumps(order).encode())
    assert not plain


@settings(max_examples=300, deadline=None)
@given(st.from_regex(MONEY_PATTERN, fullmatch=True))
def test_amounts_are_normalised_as_decimal_would(amount: str) -> None:
    assert _two_decimals(amount) == f"{Decimal(amount):.2f}"
