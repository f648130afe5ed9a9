"""Property test: hostile JSON on every write path never gets a 500, and every error is a problem.

Targets are found from the app itself, so a new write route or mutation is covered without editing
this file: every POST/PATCH/PUT/DELETE under /v1 (path ids filled with real ids) and every GraphQL
mutation (variables built from its arguments). Bodies are sent as raw text, so they can hold what
``json.dumps`` would refuse or normalise: NaN/Infinity literals, 1e400, lone surrogate escapes, NUL,
integers past 2^64, and nesting deep enough to exhaust Python's JSON parser.

Hypothesis runs in a worker thread and sends each request to the test's event loop (where the app's
database engine lives), so shrinking works as usual. Derandomized, no deadline, no example database.
"""

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from graphql import GraphQLInputObjectType, get_named_type
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from app.api.graphql.schema import build_schema
from app.core.config import Settings
from app.main import create_app
from tests.fixtures.factories import KeyFactory, camel, customer_body

PROBLEM = "application/problem+json"
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
EXAMPLES = 100


@dataclass(frozen=True)
class Target:
    kind: str  # "rest" or "graphql"
    method: str
    path: str  # REST path template, or the mutation's field name
    fields: tuple[str, ...] = ()  # body field names (REST) or argument names (GraphQL)
    query: str = ""  # GraphQL document

    def __str__(self) -> str:
        return f"{self.method} {self.path}" if self.kind == "rest" else f"graphql {self.path}"


def _model_fields(model: Any) -> tuple[str, ...]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return tuple(f.alias or name for name, f in model.model_fields.items())
    return ()


def _targets() -> tuple[list[Target], set[str]]:
    app = create_app(Settings())
    targets: list[Target] = []
    names: set[str] = set()
    for context in iter_route_contexts(app.routes):  # included routers too
        route, path = context.original_route, context.path or ""
        if not isinstance(route, APIRoute) or not path.startswith("/v1/"):
            continue
        for method in sorted((context.methods or set()) & WRITE_METHODS):
            body = route.body_field.field_info.annotation if route.body_field else None
            fields = _model_fields(body)
            names.update(fields)
            targets.append(Target("rest", method, path, fields))
    mutation = build_schema(Settings())._schema.mutation_type
    assert mutation is not None
    for name, field in mutation.fields.items():
        params = ", ".join(f"${arg}: {spec.type}" for arg, spec in field.args.items())
        args = ", ".join(f"{arg}: ${arg}" for arg in field.args)
        document = f"mutation M({params}) {{ {name}({args}) {{ __typename }} }}"
        for spec in field.args.values():
            named = get_named_type(spec.type)
            if isinstance(named, GraphQLInputObjectType):
                names.update(named.fields)
        targets.append(Target("graphql", "POST", name, tuple(field.args), document))
    return targets, names


TARGETS, FIELD_NAMES = _targets()


def test_targets_cover_every_write_route() -> None:
    rest = {str(t) for t in TARGETS if t.kind == "rest"}
    assert {"POST /v1/customers", "POST /v1/customers/batch"} <= rest
    assert {"PATCH /v1/customers/{customer_id}", "DELETE /v1/customers/{customer_id}"} <= rest
    assert {"POST /v1/api-keys", "DELETE /v1/api-keys/{key_id}"} <= rest
    graphql = {t.path for t in TARGETS if t.kind == "graphql"}
    assert {"createCustomer", "updateCustomer", "deleteCustomer"} <= graphql


# --- hostile JSON, as text ----------------------------------------------------------------------

_RAW = "\x01raw:"  # a string the serializer turns into a bare JSON literal
LITERALS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 30, "-" + "9" * 40]
HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\udbff\udc00"[::-1],  # a low surrogate before a high one: two lone surrogates
    "",
    "   ",
    "\u202e\ufeff",
    "😀" * 3,
    "Wei",
    "wei@example.com",
    "+8613800138000",
    "CN",
    "customers:write",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(LITERALS).map(lambda lit: _RAW + lit),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=12),
)
keys = st.one_of(
    st.sampled_from(sorted(FIELD_NAMES)), st.sampled_from(HOSTILE_TEXT), st.text(max_size=6)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)


def dump(value: Any) -> str:
    """JSON text, with ``_RAW`` strings as bare literals and strings escaped to ASCII (so lone
    surrogates travel as ``\\ud800`` escapes, as a hostile client would send them)."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    return re.sub(r'"\\u0001raw:([^"]*)"', r"\1", text)


@st.composite
def deep(draw: st.DrawFn, inner: str) -> str:
    levels = draw(st.sampled_from([33, 64, 900, 1500, 5000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return opener * levels + inner + closer * levels


# Valid values by field name, so a body can be valid but for one poisoned spot deep inside it.
VALID: dict[str, Any] = {
    **customer_body(),
    "external_id": "ext-1",
    "gender": "female",
    "birth_date": "1990-01-01",
    "locale": "zh-CN",
    "region": "Shanghai",
    "occupation": "engineer",
    "attributes": {"score": 1.5, "vip": True, "sizes": ["m", "l"]},
    "consent": [{"channel": "email", "purpose": "marketing", "status": "granted"}],
    "source_channel": "web",
    "owner": "li",
    "notes": "likes tea",
    "name": "shop",
    "scopes": ["customers:read"],
}


VALID_INPUT = {camel(k): v for k, v in VALID.items() if k not in ("name", "scopes")}
POISON_TEXT = ["\x00", "\ud800", "\udfff", "a\x00b", "x\udbff"]
POISON_NUMBERS = [_RAW + lit for lit in LITERALS]


@st.composite
def poisoned(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one hostile thing put somewhere inside it, keeping its shape."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(values)  # anything at all, wrong type included
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        if choice == 1:
            return {**value, draw(st.sampled_from(POISON_TEXT)): value[key]}
        return {**value, key: draw(poisoned(value[key]))}
    if isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], draw(poisoned(value[index])), *value[index + 1 :]]
    if isinstance(value, str):
        bad = draw(st.sampled_from(POISON_TEXT))
        return draw(st.sampled_from([value + bad, bad + value, bad]))
    if isinstance(value, bool | None):
        return draw(st.sampled_from([*POISON_NUMBERS, *POISON_TEXT]))
    return draw(st.sampled_from(POISON_NUMBERS))


@st.composite
def hostile_object(
    draw: st.DrawFn, valid: dict[str, Any], fields: tuple[str, ...]
) -> dict[str, Any]:
    """A valid object of some of these fields with one (sometimes two or three) poisoned."""
    known = sorted(name for name in fields if name in valid)
    chosen = draw(st.sets(st.sampled_from(known), max_size=4)) if known else set()
    body = {name: valid[name] for name in chosen}
    how_many = draw(st.sampled_from([1, 1, 1, 2, 3]))  # mostly one, so nothing else is wrong
    # free-form containers (attributes, tags, items) are where hostile values got through: favour them
    weighted = [f for f in fields for _ in range(8 if isinstance(valid.get(f), list | dict) else 1)]
    for name in draw(st.sets(st.sampled_from(weighted), min_size=1, max_size=how_many)):
        body[name] = draw(poisoned(valid.get(name, "x")))
    return body


@st.composite
def bodies(draw: st.DrawFn, fields: tuple[str, ...]) -> str:
    """Mostly a valid body of the target's own fields but for a poisoned spot (so validators deep
    inside are reached), sometimes anything at all, sometimes nested deeper than parsers like."""
    shape = draw(st.sampled_from(["poisoned"] * 8 + ["batch", "batch", "any", "deep"]))
    if shape == "any" or not fields:
        return dump(draw(values))
    if shape == "batch" or fields == ("items",):
        customer_fields = tuple(k for k in VALID if k not in ("name", "scopes"))
        anything = draw(st.dictionaries(keys, values, max_size=4))
        items = [draw(hostile_object(VALID, customer_fields)), customer_body(), anything]
        return dump({"items": draw(st.permutations(items))})
    text = dump(draw(hostile_object(VALID, fields)))
    if shape == "deep":
        inner = draw(deep("1"))
        text = text[:-1] + (", " if len(text) > 2 else "") + f'"attributes": {{"a": {inner}}}' + "}"
    return text


# Mostly the ordinary header and query, so the body is what gets checked; now and then not.
IF_MATCH = st.sampled_from(
    [None] * 6 + ['"v1"', 'W/"v1"', "*", "garbage", '"v99999999999999999999"']
)
CONTENT_TYPES = st.sampled_from(
    ["application/json"] * 8 + ["application/merge-patch+json", "text/plain", ""]
)
QUERIES = st.sampled_from([{}] * 8 + [{"limit": "5"}, {"x": "\x00"}, {"\x00": "1"}])


# --- the property ------------------------------------------------------------------------------


def check_rest(response: httpx.Response, label: str) -> None:
    assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM, f"{label}: {response.text[:300]}"
        problem = response.json()
        assert problem["code"], problem
        assert problem["status"] == response.status_code, problem
        assert problem["request_id"] == response.headers["x-request-id"], problem


def check_graphql(response: httpx.Response, label: str) -> None:
    if response.headers.get("content-type") == PROBLEM:
        check_rest(response, label)
        return
    assert response.status_code == 200, f"{label}: {response.status_code} {response.text[:500]}"
    for error in response.json().get("errors") or []:
        assert error.get("extensions", {}).get("code"), f"{label}: {error}"
        assert error["extensions"]["code"] != "internal_error", f"{label}: {error}"


@pytest.mark.parametrize("target", TARGETS, ids=str)
async def test_hostile_json_is_never_a_500(
    client: httpx.AsyncClient, make_key: KeyFactory, target: Target
) -> None:
    # not the email or phone of VALID, so a poisoned body is not simply a 409
    created = await client.post(
        "/v1/customers", json=customer_body(email="setup@example.com", phone=None, external_id="s")
    )
    customer = created.json()
    spare_key = (
        await client.post("/v1/api-keys", json={"name": "spare", "scopes": ["admin"]})
    ).json()
    ids = {"customer_id": customer["id"], "key_id": spare_key["id"]}
    global_id = (
        await client.post(
            "/graphql",
            json={"query": "{ customers(first: 1) { edges { node { id } } } }"},
        )
    ).json()["data"]["customers"]["edges"][0]["node"]["id"]
    loop = asyncio.get_running_loop()

    def send(method: str, url: str, **kwargs: Any) -> httpx.Response:
        request = client.request(method, url, **kwargs)
        return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=120)

    def url_for(path: str, fuzz_id: str | None) -> str:
        def fill(match: re.Match[str]) -> str:
            return fuzz_id if fuzz_id is not None else ids.get(match[1], str(uuid.uuid4()))

        return re.sub(r"\{(\w+)\}", fill, path)

    @given(
        body=bodies(target.fields if target.kind == "rest" else ()),
        content_type=CONTENT_TYPES,
        if_match=IF_MATCH,
        query=QUERIES,
        fuzz_id=st.one_of(st.none(), st.none(), st.sampled_from(["x", "%00", "1" * 300])),
        variables=st.fixed_dictionaries(
            {},
            optional={
                "id": st.sampled_from([global_id, "x", "\x00", "\ud800"]),
                "ifMatch": st.one_of(st.integers(), st.sampled_from(POISON_NUMBERS)),
                "input": st.one_of(
                    hostile_object(VALID_INPUT, tuple(VALID_INPUT)), st.just(VALID_INPUT), values
                ),
            },
        ),
        nested=st.booleans(),
    )
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def property_(
        body: str,
        content_type: str,
        if_match: str | None,
        query: dict[str, str],
        fuzz_id: str | None,
        variables: dict[str, Any],
        nested: bool,
    ) -> None:
        if target.kind == "graphql":
            text = (
                '{"query": ' + json.dumps(target.query) + ', "variables": ' + dump(variables) + "}"
            )
            if nested:  # the whole request nested past the limit, somewhere strawberry reads
                text = text[:-1] + ', "extensions": {"a": ' + "[" * 2000 + "]" * 2000 + "}}"
            response = send(
                "POST", "/graphql", content=text, headers={"content-type": "application/json"}
            )
            check_graphql(response, f"{target}: {text[:300]}")
            return
        headers = {"content-type": content_type} if content_type else {}
        if if_match is not None:
            headers["If-Match"] = if_match
        response = send(
            target.method,
            url_for(target.path, fuzz_id),
            content=body.encode("utf-8", "surrogatepass"),
            headers=headers,
            params=query,
        )
        check_rest(response, f"{target}: {body[:300]!r}")

    await asyncio.to_thread(property_)

    # nothing stored was lost or half-written: the customer is intact unless a DELETE removed it
    after = await client.get(f"/v1/customers/{customer['id']}")
    if after.status_code == 200:
        assert after.json()["id"] == customer["id"]
        assert after.json()["version"] >= 1
    else:
        assert target.method == "DELETE" or target.path == "deleteCustomer", after.text
