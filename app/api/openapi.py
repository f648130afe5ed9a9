"""The OpenAPI documentation of the request pipeline's conventions: applied centrally, never by hand
per endpoint. ``document_route`` runs for every /v1 route (``KehuRoute.__init__``) and derives what
the route can send and answer from what it declares; ``finish`` completes the whole document
(``create_app``'s OpenAPI post-processing).

Request headers
  - ``Idempotency-Key`` on every POST whose response may be stored (``KehuRoute.stores_responses``;
    a route that never stores, such as creating an API key, answers any key with 400).
  - ``If-Match`` on every route whose endpoint takes ``IfMatchDep`` (PATCH/DELETE of a versioned
    resource).
  - ``If-None-Match`` on every GET of a versioned resource: the pipeline answers 304 when it names
    the current ETag (lists carry no ETag, so they never answer 304).

Response headers
  - ``X-Request-ID`` on every response of every operation (the request middleware sets it).
  - ``RateLimit-Limit``/``-Remaining``/``-Reset`` on every /v1 success, 304 and 429.
  - ``ETag`` on the success of a versioned resource (its response model has a ``version``), and 304.
  - ``Location`` on a 201 whose created resource can be read back (a GET on ``<path>/{id}`` exists).
  - ``Idempotent-Replayed`` on successes of POSTs that take Idempotency-Key.
  - ``Retry-After`` on 429, on 503 and on the 409 of a POST that takes Idempotency-Key.
  - ``WWW-Authenticate`` on 401.

Error statuses: only those the operation can answer, each a ``Problem`` in
``application/problem+json``, with the codes the pipeline knows listed in the description:
  - 400 on every /v1 operation: the pipeline refuses any query parameter the route does not declare
    (``unknown_parameter``); plus ``invalid_cursor`` where the route takes ``cursor``, and
    ``invalid_idempotency_key`` / ``idempotency_not_supported`` on POST.
  - 401 (authentication), 403 (every operation's service requires a scope), 429 (per-key rate limit,
    failed-key throttle) and 503 (database unavailable or not migrated) on every /v1 operation;
    an operation that takes no API key (``KehuRoute.requires_key`` off: a survey link, whose token
    is the credential) has ``security: []``, no 401 or 403, and a 429 per client address.
  - 404 when the path has a parameter (the addressed resource may not exist).
  - 409 on a POST that takes Idempotency-Key (``idempotency_key_in_use``); 412 where the route takes
    If-Match (``invalid_if_match``, ``version_mismatch``). Any other 409/412 only where the endpoint
    declares it with ``problem_doc``.
  - 413 and 415 when the route takes a JSON body.
  - 422 when the route takes a body or any parameter (``validation_failed``), or Idempotency-Key
    (``idempotency_key_reused``).
  - 304 on a GET of a versioned resource.
An endpoint's own ``problem_doc`` for a status is kept, with the pipeline's codes added to it. Left
out everywhere: 404/405 for paths and methods no operation matches, 413 for a body sent to an
operation that takes none, and 500 (``internal_error``, always possible, never part of a contract).
"""

import re
from collections.abc import Iterable, Iterator
from typing import Any, get_args

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from starlette.routing import BaseRoute

from app.api.problems import PROBLEM_JSON, FieldError, Problem
from app.domains import idempotency

IF_MATCH = "If-Match"
PROBLEM_REF = "#/components/schemas/Problem"

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: the same key with the same request (JSON compared "
    "canonically) replays the stored response with `Idempotent-Replayed: true` for 24 h (by "
    "default); the same key with another request is 422 `idempotency_key_reused`, and while the "
    "first request still runs, 409 `idempotency_key_in_use`. 1 to 255 printable ASCII characters.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_KEY_LENGTH,
        "pattern": idempotency.HEADER_PATTERN,
    },
}
IF_MATCH_PARAMETER: dict[str, Any] = {
    "name": IF_MATCH,
    "in": "header",
    "required": False,
    "description": 'The ETag from a previous read, e.g. `"v3"`: 412 `version_mismatch` if the '
    'resource has changed since. Compared strongly: a weak ETag (`W/"v3"`) never matches. '
    "Without it the change applies to the current version.",
    "schema": {"type": "string"},
}
IF_NONE_MATCH_PARAMETER: dict[str, Any] = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "An ETag from a previous read (or `*`): 304 without a body while it is current.",
    "schema": {"type": "string"},
}


def _header(description: str, schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


X_REQUEST_ID = _header(
    "This request's id (the client's own `X-Request-ID` when it is 1 to 128 of `A-Za-z0-9._:-`); "
    "also `request_id` in problem bodies and in the logs.",
    {"type": "string"},
)
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header(
        "Requests allowed per window for this API key.", {"type": "integer", "minimum": 0}
    ),
    "RateLimit-Remaining": _header(
        "Requests left in the current window.", {"type": "integer", "minimum": 0}
    ),
    "RateLimit-Reset": _header(
        "Seconds until the window frees capacity.", {"type": "integer", "minimum": 0}
    ),
}
ETAG = _header(
    'The version of the resource, a strong ETag such as `"v3"`: send it as `If-Match` to update '
    "or delete exactly this version, or as `If-None-Match` to revalidate a read.",
    {"type": "string", "pattern": '^"v[0-9]+"$'},
)
LOCATION = _header(
    "Where the created resource can be read.", {"type": "string", "format": "uri-reference"}
)
IDEMPOTENT_REPLAYED = _header(
    "`true` when this is the stored response of an earlier request with the same Idempotency-Key.",
    {"type": "string", "enum": ["true"]},
    required=False,
)
WWW_AUTHENTICATE = _header("`Bearer`: how to authenticate.", {"type": "string"})


def _retry_after(required: bool) -> dict[str, Any]:
    return _header("Seconds to wait before retrying.", {"type": "integer", "minimum": 0}, required)


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    pending = [dependant]
    while pending:
        current = pending.pop()
        pending.extend(current.dependencies)
        yield current


def _names(dependant: Dependant, kind: str) -> set[str]:
    return {field.alias for d in _walk(dependant) for field in getattr(d, kind)}


def is_versioned(model: Any) -> bool:
    """Whether a response model is a versioned resource: its responses carry an ETag."""
    return (
        isinstance(model, type) and issubclass(model, BaseModel) and "version" in model.model_fields
    )


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _codes(*reasons: str) -> str:
    return "; ".join(reasons) + "."


def document_route(route: APIRoute, *, stores_responses: bool, requires_key: bool = True) -> None:
    """Document the pipeline's headers and the error statuses ``route`` can answer (see the module
    docstring for the rules). Idempotent: safe to run again on the same route. A route that takes
    no API key (``requires_key`` off) has an empty ``security`` and no 401 or 403."""
    methods = route.methods or set()
    query = _names(route.dependant, "query_params")
    headers = {name.lower() for name in _names(route.dependant, "header_params")}
    has_params = bool(
        query
        or headers
        or _names(route.dependant, "path_params")
        or _names(route.dependant, "cookie_params")
    )
    takes_body = route.body_field is not None
    has_path_params = bool(route.param_convertors)
    is_post = "POST" in methods
    takes_key = is_post and stores_responses
    takes_if_match = IF_MATCH.lower() in headers
    versioned = is_versioned(route.response_model)
    conditional_get = "GET" in methods and versioned

    parameters: list[dict[str, Any]] = []
    if takes_key:
        parameters.append(IDEMPOTENCY_KEY_PARAMETER)
    if takes_if_match:
        parameters.append(IF_MATCH_PARAMETER)
    if conditional_get:
        parameters.append(IF_NONE_MATCH_PARAMETER)
    if not requires_key:
        route.openapi_extra = {**(route.openapi_extra or {}), "security": []}
    if parameters:
        extra = dict(route.openapi_extra or {})
        present = {p.get("name") for p in extra.get("parameters", [])}
        extra["parameters"] = [
            *extra.get("parameters", []),
            *(p for p in parameters if p["name"] not in present),
        ]
        route.openapi_extra = extra

    success_headers: dict[str, Any] = dict(RATE_LIMIT_HEADERS)
    if versioned:
        success_headers["ETag"] = ETAG
    if takes_key:
        success_headers["Idempotent-Replayed"] = IDEMPOTENT_REPLAYED
    success = _entry(route, route.status_code or 200)
    success.setdefault("headers", {}).update(success_headers)
    if conditional_get:
        not_modified = _entry(route, 304)
        not_modified.setdefault(
            "description", "Not Modified: If-None-Match names the current ETag."
        )
        not_modified.setdefault("headers", {}).update({"ETag": ETAG, **RATE_LIMIT_HEADERS})

    bad_request = ["`unknown_parameter`: a query parameter this operation does not take"]
    if "cursor" in query:
        bad_request.append(
            "`invalid_cursor`: a cursor this list did not issue, or for another sort"
        )
    if takes_key:
        bad_request.append("`invalid_idempotency_key`: a malformed Idempotency-Key")
    elif is_post:
        bad_request.append(
            "`idempotency_not_supported`: any Idempotency-Key (this response is never stored)"
        )
    problems: dict[int, tuple[str, dict[str, Any]]] = {
        400: (_codes(*bad_request), {}),
        401: (
            _codes("`unauthorized` / `invalid_api_key`: no valid API key"),
            {"WWW-Authenticate": WWW_AUTHENTICATE},
        ),
        403: (_codes("`missing_scope`: the API key lacks a scope this operation needs"), {}),
        429: (
            _codes(
                "`rate_limited`: over this API key's rate limit, or too many invalid keys from "
                "this address; retry after `Retry-After` seconds"
            ),
            {"Retry-After": _retry_after(True), **RATE_LIMIT_HEADERS},
        ),
        503: (
            _codes(
                "`database_unavailable` / `migrations_pending`: the database is not reachable or "
                "its schema is behind the code; retry after `Retry-After` seconds"
            ),
            {},  # Retry-After: on every 503 of the document (``finish``)
        ),
    }
    if has_path_params:
        problems[404] = (
            _codes("Nothing exists at this path (`not_found`, `<resource>_not_found`)"),
            {},
        )
    if takes_key:
        problems[409] = (
            _codes(
                "`idempotency_key_in_use`: a request with this Idempotency-Key is still running; "
                "retry after `Retry-After` seconds"
            ),
            {"Retry-After": _retry_after(False)},
        )
    if takes_if_match:
        problems[412] = (
            _codes(
                "`invalid_if_match`: If-Match is not an ETag of this API",
                "`version_mismatch`: If-Match names another version than the current one",
            ),
            {},
        )
    if takes_body:
        problems[413] = (_codes("`payload_too_large`: the body is over 1 MiB"), {})
        problems[415] = (
            _codes(
                "`unsupported_media_type`: the body is not JSON (`Content-Type: application/json`)"
            ),
            {},
        )
    unprocessable = []
    if takes_body or has_params:
        unprocessable.append("`validation_failed`: the request is not valid; `errors[]` says where")
    if takes_key:
        unprocessable.append(
            "`idempotency_key_reused`: this Idempotency-Key was used with another request"
        )
    if unprocessable:
        problems[422] = (_codes(*unprocessable), {})

    if not requires_key:
        del problems[401], problems[403]
        problems[429] = (
            _codes(
                "`rate_limited`: over the rate limit of this client address; retry after "
                "`Retry-After` seconds"
            ),
            problems[429][1],
        )
    for status, (description, problem_headers) in problems.items():
        declared = _declared(route, status)
        if declared is None:
            route.responses[status] = _problem(description, problem_headers)
            continue
        # The endpoint documents this status itself (problem_doc): keep its words, add the
        # pipeline's codes.
        own = str(declared.get("description") or "").strip()
        if description not in own:
            declared["description"] = f"{own} {description}".strip()
        declared.setdefault("headers", {}).update(problem_headers)
        if "model" not in declared:
            declared.setdefault("content", {})[PROBLEM_JSON] = {"schema": {"$ref": PROBLEM_REF}}


def _declared(route: APIRoute, status: int) -> dict[str, Any] | None:
    """The route's own entry for ``status``, copied first: entries may be shared between routes."""
    for key in (status, str(status)):
        if key in route.responses:
            entry = dict(route.responses[key])
            if "headers" in entry:
                entry["headers"] = dict(entry["headers"])
            route.responses[key] = entry
            return entry
    return None


def _entry(route: APIRoute, status: int) -> dict[str, Any]:
    entry = _declared(route, status)
    if entry is None:
        entry = route.responses[status] = {}
    return entry


def component_models(routes: Iterable[BaseRoute]) -> dict[str, type[BaseModel]]:
    """Every pydantic model behind the document's components (request bodies, responses and the
    models nested in them, and ``Problem``), by component name."""
    pending: list[Any] = [Problem]
    for ctx in iter_route_contexts(list(routes)):
        route = ctx.original_route
        pending.append(getattr(route, "response_model", None))
        body = getattr(route, "body_field", None)
        if body is not None:
            pending.append(body.field_info.annotation)
    found: dict[str, type[BaseModel]] = {}
    while pending:
        item = pending.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            name = re.sub(r"[^a-zA-Z0-9.\-_]", "_", item.__name__)
            if name in found:
                continue
            found[name] = item
            pending.extend(f.annotation for f in item.model_fields.values())
        else:
            pending.extend(get_args(item))
    return found


def finish(schema: dict[str, Any], routes: Iterable[BaseRoute] = ()) -> None:
    """Complete the generated document (in place): the bearer key on every /v1 operation, every
    error as `application/problem+json`, `Problem` in the components, `X-Request-ID` on every
    response, `Retry-After` on every 503, `Location` on the 201s whose resource can be read
    back, and the models' examples as written (``routes``' models; FastAPI drops their nulls)."""
    components = schema.setdefault("components", {})
    components["securitySchemes"] = {
        "ApiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer kehu_...`.",
        }
    }
    schemas = components.setdefault("schemas", {})
    for model in (Problem, FieldError):
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(generated.pop("$defs", {}))
        schemas.setdefault(model.__name__, generated)
    for name, documented in component_models(routes).items():
        extra = documented.model_config.get("json_schema_extra")
        if name in schemas and isinstance(extra, dict) and "examples" in extra:
            schemas[name]["examples"] = to_jsonable_python(extra["examples"])
    for component in schemas.values():
        for example in component.get("examples", []):
            _restore_nulls(example, component, schemas)
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path.startswith("/v1/"):
                # An empty list (set by ``document_route``): the operation takes no API key.
                operation.setdefault("security", [{"ApiKey": []}])
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                ref = content.get("application/json", {}).get("schema", {}).get("$ref")
                if status[:1] in ("4", "5") and str(ref).endswith("/Problem"):
                    content[PROBLEM_JSON] = content.pop("application/json")
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = X_REQUEST_ID
                if status == "503":
                    headers.setdefault("Retry-After", _retry_after(False))
                if method == "post" and status == "201" and _readable_at(paths, path) is not None:
                    headers["Location"] = LOCATION
            # Statuses in order (the pipeline's are added after the endpoint's own).
            operation["responses"] = dict(sorted(operation.get("responses", {}).items()))


def _readable_at(paths: dict[str, dict[str, Any]], collection: str) -> str | None:
    """The path of one item of ``collection`` that can be read (``/v1/customers/{customer_id}``)."""
    for path, operations in paths.items():
        head, _, last = path.rpartition("/")
        if head == collection and last.startswith("{") and "get" in operations:
            return path
    return None


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = schemas.get(ref.rsplit("/", 1)[1], {})
        return resolved
    return schema


def _may_be_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(
        o.get("type") == "null" for o in schema.get("anyOf", [])
    )


def _restore_nulls(example: Any, schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    """FastAPI writes the document without null values, the models' examples included: put null
    back where an example left out a required property that may be null (``revoked_at``)."""
    schema = _resolve(schema, schemas)
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            _restore_nulls(example, option, schemas)
    if isinstance(example, list) and isinstance(schema.get("items"), dict):
        for item in example:
            _restore_nulls(item, schema["items"], schemas)
    properties: dict[str, Any] = schema.get("properties", {})
    if isinstance(example, dict) and properties:
        for name in schema.get("required", []):
            if name not in example and _may_be_null(properties.get(name, {})):
                example[name] = None
        for name, value in example.items():
            if name in properties:
                _restore_nulls(value, properties[name], schemas)
