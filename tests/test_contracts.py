import json
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
