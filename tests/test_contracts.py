import json
import re
from pathlib import Path

from app.contracts import graphql_sdl, openapi_document

OPENAPI = Path(__file__).resolve().parents[1] / "openapi"
HINT = "The committed contract differs from the code: regenerate with `uv run kehu openapi`."


def _committed(name: str) -> str:
    path = OPENAPI / name
    assert path.exists(), f"{path} is missing. {HINT}"
    return path.read_text()


def test_openapi_json_is_current() -> None:
    committed = json.loads(_committed("openapi.json"))
    assert committed == json.loads(json.dumps(openapi_document())), HINT


def test_graphql_sdl_is_current() -> None:
    assert _committed("schema.graphql") == graphql_sdl(), HINT


def test_operation_ids_read_like_client_methods() -> None:
    operations = [
        operation
        for path in openapi_document()["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict)
    ]
    ids = [operation["operationId"] for operation in operations]
    assert "getCustomer" in ids
    assert "listEvents" in ids
    assert len(ids) == len(set(ids)), ids
    bad = [i for i in ids if not re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", i)]
    assert bad == []


def test_graphql_endpoint_is_not_a_rest_operation() -> None:
    assert not any(path.startswith("/graphql") for path in openapi_document()["paths"])
