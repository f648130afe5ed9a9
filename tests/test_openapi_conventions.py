"""The pipeline's conventions in the OpenAPI document, checked route by route against what each route
declares (app/api/openapi.py states the rules). The document is generated, never copied here."""

import re
from functools import cache
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from app.api.deps import KehuRoute
from app.api.openapi import component_models
from app.api.problems import PROBLEM_JSON
from app.core.auth import SCOPES
from app.core.schemas import OutputModel
from app.idempotency.service import HEADER_PATTERN
from app.main import create_app

ALWAYS = {"400", "401", "403", "429", "503"}
RATE_LIMIT = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}


@cache
def document() -> dict[str, Any]:
    return create_app().openapi()


def _operations() -> list[tuple[str, str, dict[str, Any], KehuRoute]]:
    """(method, path, operation, route) for every /v1 operation."""
    routes = {
        (method.lower(), str(ctx.path)): ctx.original_route
        for ctx in iter_route_contexts(create_app().routes)
        for method in (ctx.methods or ())
    }
    found = []
    for path, operations in document()["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/v1/"):
                route = routes[(method, path)]
                assert isinstance(route, KehuRoute)
                found.append((method, path, operation, route))
    return found


OPERATIONS = _operations()


def _id(value: Any) -> str:
    return f"{value[0].upper()} {value[1]}"


def _schema(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_schema.get("$ref", "")
    if ref:
        resolved: dict[str, Any] = document()["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return ref_or_schema


def _header_params(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}


def _success(operation: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(status, response)] = [(s, r) for s, r in operation["responses"].items() if s[0] == "2"]
    return status, response


def _versioned(operation: dict[str, Any]) -> bool:
    """Whether the success body is a resource with a version (the ETag is made from it)."""
    _, response = _success(operation)
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    return schema is not None and "version" in _schema(schema).get("properties", {})


def _get_at(path: str) -> dict[str, Any] | None:
    operation: dict[str, Any] | None = document()["paths"].get(path, {}).get("get")
    return operation


def test_the_checks_see_every_v1_operation() -> None:
    labels = {_id(o) for o in OPERATIONS}
    assert {"POST /v1/customers", "PATCH /v1/customers/{customer_id}", "GET /v1/events"} <= labels
    assert "POST /v1/api-keys" in labels


@pytest.mark.parametrize("op", OPERATIONS, ids=_id)
def test_idempotency_key_on_every_post_that_stores_responses(op: Any) -> None:
    method, _, operation, route = op
    headers = _header_params(operation)
    if method == "post" and route.stores_responses:
        key = headers["Idempotency-Key"]
        assert key["required"] is False
        assert key["schema"]["maxLength"] == 255
        assert key["schema"]["pattern"] == HEADER_PATTERN
        assert "Idempotent-Replayed" in _success(operation)[1]["headers"]
        assert "idempotency_key_reused" in operation["responses"]["422"]["description"]
        assert "idempotency_key_in_use" in operation["responses"]["409"]["description"]
        assert "Retry-After" in operation["responses"]["409"]["headers"]
    else:
        assert "Idempotency-Key" not in headers
        assert "Idempotent-Replayed" not in _success(operation)[1].get("headers", {})
    if method == "post" and not route.stores_responses:
        assert "idempotency_not_supported" in operation["responses"]["400"]["description"]


@pytest.mark.parametrize("op", OPERATIONS, ids=_id)
def test_conditional_requests(op: Any) -> None:
    method, path, operation, _ = op
    headers = _header_params(operation)
    has_id = re.search(r"\{[a-z_]+_id\}$", path) is not None
    read_back = _get_at(path)
    versioned_resource = has_id and read_back is not None and _versioned(read_back)
    if method in ("patch", "delete") and versioned_resource:
        assert "If-Match" in headers
    if "If-Match" in headers:
        assert method in ("patch", "delete", "put")
        assert "412" in operation["responses"]
        assert "version_mismatch" in operation["responses"]["412"]["description"]
    else:
        assert "412" not in operation["responses"]
    if method == "get" and _versioned(operation):
        assert "If-None-Match" in headers
        not_modified = operation["responses"]["304"]
        assert "content" not in not_modified
        assert not_modified["headers"]["ETag"]["required"] is True
    else:
        assert "If-None-Match" not in headers
        assert "304" not in operation["responses"]


@pytest.mark.parametrize("op", OPERATIONS, ids=_id)
def test_response_headers(op: Any) -> None:
    method, path, operation, route = op
    status, success = _success(operation)
    for code, response in operation["responses"].items():
        assert response["headers"]["X-Request-ID"]["required"] is True, code
        if code[0] in "23" or code == "429":
            assert set(response["headers"]) >= RATE_LIMIT, code
            assert all(response["headers"][h]["required"] for h in RATE_LIMIT)
    assert operation["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    assert "Retry-After" in operation["responses"]["503"]["headers"]
    if route.requires_key:
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    etag = success["headers"].get("ETag")
    if method in ("get", "post", "patch", "put") and _versioned(operation):
        assert etag is not None
        assert etag["required"] is True
        assert re.fullmatch(etag["schema"]["pattern"], '"v3"')
    else:
        assert etag is None
    location = success["headers"].get("Location")
    readable = any(
        p.startswith(path + "/{") and p.count("/") == path.count("/") + 1 and "get" in ops
        for p, ops in document()["paths"].items()
    )
    if status == "201" and readable:
        assert location is not None
        assert location["required"] is True
    else:
        assert location is None


@pytest.mark.parametrize("op", OPERATIONS, ids=_id)
def test_only_the_errors_an_operation_can_answer(op: Any) -> None:
    method, path, operation, route = op
    statuses = {s for s in operation["responses"] if s[0] in "45"}
    takes_body = "requestBody" in operation
    parameters = operation.get("parameters", [])
    has_path_params = "{" in path
    expected = set(ALWAYS) if route.requires_key else ALWAYS - {"401", "403"}
    if has_path_params:
        expected.add("404")
    if takes_body:
        expected |= {"413", "415"}
    if takes_body or parameters or has_path_params:
        expected.add("422")
    if method == "post" and route.stores_responses:
        expected.add("409")
    if "If-Match" in _header_params(operation):
        expected.add("412")
    # Endpoint-specific ones (problem_doc): 409, 410 and 412 only.
    assert statuses - expected <= {"409", "410", "412"}, statuses - expected
    assert expected <= statuses, expected - statuses
    if any(p["name"] == "cursor" for p in parameters):
        assert "invalid_cursor" in operation["responses"]["400"]["description"]
    assert "unknown_parameter" in operation["responses"]["400"]["description"]
    for code in statuses:
        content = operation["responses"][code]["content"]
        assert list(content) == [PROBLEM_JSON], code
        assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_every_operation_is_authenticated_and_no_fastapi_validation_schema_leaks() -> None:
    for _, _, operation, route in OPERATIONS:
        assert operation["security"] == ([{"ApiKey": []}] if route.requires_key else [])
    # The only operations without an API key: a survey link's token is its credential.
    assert {_id(op) for op in OPERATIONS if not op[3].requires_key} == {
        "GET /v1/feedback/surveys/{token}",
        "POST /v1/feedback/surveys/{token}",
    }
    assert "HTTPValidationError" not in document()["components"]["schemas"]


def test_ops_responses_carry_the_request_id_and_retry_after() -> None:
    readyz = document()["paths"]["/readyz"]["get"]["responses"]
    assert "X-Request-ID" in readyz["200"]["headers"]
    assert "Retry-After" in readyz["503"]["headers"]
    assert list(readyz["503"]["content"]) == [PROBLEM_JSON]


def test_every_component_schema_has_examples() -> None:
    schemas = document()["components"]["schemas"]
    # An enumeration lists its values, which is all an example could show.
    missing = {
        name
        for name, s in schemas.items()
        if "example" not in s and "examples" not in s and "enum" not in s
    }
    assert not missing, f"without examples: {sorted(missing)}"


def test_examples_are_valid() -> None:
    """Each example is accepted by the model that the component documents; a response's example
    is exactly what that model sends (every field, values in their serialized form)."""
    models = component_models(create_app().routes)
    checked = set()
    for name, schema in document()["components"]["schemas"].items():
        for example in schema.get("examples", []):
            model = models[name]
            parsed = model.model_validate(example)
            if issubclass(model, OutputModel):
                assert parsed.model_dump(mode="json") == example, name
            checked.add(name)
    assert {"CustomerCreate", "CustomerUpdate", "CustomerOut", "CustomerBatch"} <= checked


def test_enumerated_values_are_enums() -> None:
    schemas = document()["components"]["schemas"]
    for name in ("ApiKeyCreate", "ApiKeyOut", "ApiKeyCreated"):
        assert schemas[name]["properties"]["scopes"]["items"]["enum"] == list(SCOPES), name
    for _, _, operation, _ in OPERATIONS:
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "sort":
                assert _schema(parameter["schema"])["enum"], operation["operationId"]
