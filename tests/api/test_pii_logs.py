"""PII never reaches the logs: every error path, driven with marker values, through a real uvicorn
server (so its own "Exception in ASGI application" traceback is covered), capturing stdout, stderr
and the standard logging root."""

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from sqlalchemy import text

from app.core.config import Settings
from app.core.logging import safe_traceback
from app.customers import repository
from app.db import Connection
from app.db.driver import DriverStatement
from app.main import create_app
from tests.fixtures.factories import KeyFactory, bearer

TAG = secrets.token_hex(4)
MARK_EMAIL = f"pii.{TAG}@marker-{TAG}.example"
MARK_PHONE = "+86139" + str(10_000_000 + secrets.randbelow(89_999_999))
MARK_NAME = f"Markname{TAG}"
MARKERS = (MARK_EMAIL, MARK_PHONE, MARK_PHONE.lstrip("+"), MARK_NAME, TAG)

RAISE_WITH_DETAIL = """
CREATE OR REPLACE FUNCTION pg_temp.kehu_fail(value text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'cannot store %', value USING DETAIL = 'Key (email)=(' || value || ')';
END $$
"""


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """The app behind a real uvicorn server (as `kehu serve` runs it); yields its base URL."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


# Stand-ins for repository.insert_with_event, each failing the way it could, on the same
# connection path (statements on the asyncpg driver connection, as the real one runs).
_PLAIN_INSERT = DriverStatement(
    "INSERT INTO customers (id, email, external_id, version, created_at, updated_at) "
    "VALUES ($1, $2, $3, 1, now(), now()) RETURNING id",
    ["id", "email", "external_id"],
)
_FAIL_WITH_VALUE = DriverStatement("SELECT pg_temp.kehu_fail($1)", ["v"])
_CAST_TO_DATE = DriverStatement("SELECT $1::date", ["v"])


async def _plain_insert(conn: Connection, values: dict[str, Any], event: dict[str, Any]) -> Any:
    """A lost race: an INSERT without ON CONFLICT, failing on the unique email index."""
    return await _PLAIN_INSERT.fetchrow(conn, values)


async def _server_error(conn: Connection, values: dict[str, Any], event: dict[str, Any]) -> Any:
    """An unexpected database error whose message and DETAIL quote the email."""
    await conn.execute(text(RAISE_WITH_DETAIL))
    await _FAIL_WITH_VALUE.fetchrow(conn, {"v": values["email"]})


async def _driver_error(conn: Connection, values: dict[str, Any], event: dict[str, Any]) -> Any:
    """An error raised by asyncpg itself while encoding a parameter (it quotes the value)."""
    await _CAST_TO_DATE.fetchrow(conn, {"v": values["phone"]})


def body(**overrides: Any) -> dict[str, Any]:
    data = {"email": MARK_EMAIL, "phone": MARK_PHONE, "first_name": MARK_NAME, "country": "CN"}
    data.update(overrides)
    return data


GQL_CREATE = """mutation($input: CustomerCreateInput!) {
  createCustomer(input: $input) { customer { id email } } }"""


def gql_input(**overrides: Any) -> dict[str, Any]:
    data = {"email": MARK_EMAIL, "phone": MARK_PHONE, "firstName": MARK_NAME, "country": "CN"}
    data.update(overrides)
    return {"query": GQL_CREATE, "variables": {"input": data}}


def gql_codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


async def test_marker_pii_never_appears_in_any_log(
    database_url: str,
    settings: Settings,
    make_key: KeyFactory,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = await make_key("admin")
    # The test's own HTTP client logs the URLs it requests (with query strings); it is not Kehu.
    caplog.set_level(logging.WARNING, logger="httpx2")
    # As an operator turning on SQL logging would: statements are logged, their values are not.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.INFO)  # last: it also sets the capturing handler's level
    uvicorn_logger = logging.getLogger("uvicorn")  # does not propagate to the root
    async with served(settings) as base:
        uvicorn_logger.addHandler(caplog.handler)
        try:
            async with httpx.AsyncClient(base_url=base, headers=bearer(key), timeout=30) as http:
                created = await http.post("/v1/customers", json=body())
                assert created.status_code == 201, created.text
                duplicate = await http.post("/v1/customers", json=body(external_id=TAG))
                assert duplicate.status_code == 409
                invalid = await http.post(
                    "/v1/customers",
                    json=body(email=f"{MARK_NAME}@@{TAG}", phone=f"{MARK_PHONE}{TAG}"),
                )
                assert invalid.status_code == 422
                refused = await http.get("/v1/customers", params={"phone": MARK_PHONE + TAG})
                assert refused.status_code in (200, 422)
                assert (await http.post("/graphql", json=gql_input())).status_code == 200
                bad = await http.post("/graphql", json=gql_input(email=f"{MARK_NAME}@@"))
                assert gql_codes(bad) == ["validation_failed"]

                monkeypatch.setattr(repository, "insert_with_event", _plain_insert)
                race = await http.post("/v1/customers", json=body(external_id="r1"))
                assert race.status_code == 409
                assert race.json()["code"] == "conflict"
                race_gql = await http.post("/graphql", json=gql_input(externalId="r2"))
                assert gql_codes(race_gql) == ["conflict"]

                for failing in (_server_error, _driver_error):
                    monkeypatch.setattr(repository, "insert_with_event", failing)
                    fresh = body(email=f"x.{MARK_EMAIL}", external_id=failing.__name__)
                    broken = await http.post("/v1/customers", json=fresh)
                    assert broken.status_code == 500
                    assert broken.json()["code"] == "internal_error"
                    broken_gql = await http.post(
                        "/graphql", json=gql_input(email=f"y.{MARK_EMAIL}")
                    )
                    assert gql_codes(broken_gql) == ["internal_error"]
        finally:
            uvicorn_logger.removeHandler(caplog.handler)

    out, err = capfd.readouterr()
    records = caplog.text
    # The capture is real: the structured error lines and SQLAlchemy's statement log arrived, and
    # they name the database errors by class and SQLSTATE. The request middleware answers the 500
    # itself, so uvicorn logs no second traceback.
    assert '"event": "unhandled_exception"' in out
    assert '"event": "graphql_unexpected_error"' in out
    assert '"event": "integrity_conflict"' in out
    assert "SQLSTATE P0001" in out
    assert "INSERT INTO customers" in records
    assert "Exception in ASGI application" not in err + records
    for marker in MARKERS:
        assert out.count(marker) == 0, marker
        assert err.count(marker) == 0, marker
        assert records.count(marker) == 0, marker


def test_safe_traceback_reduces_chained_database_errors() -> None:
    from asyncpg.exceptions import (  # type: ignore[import-untyped]  # no type information
        UniqueViolationError,
    )
    from sqlalchemy.exc import IntegrityError

    driver = UniqueViolationError("duplicate key value violates unique constraint")
    driver.detail = f"Key (email)=({MARK_EMAIL}) already exists."
    driver.sqlstate = "23505"
    try:
        try:
            raise driver
        except UniqueViolationError as exc:
            raise IntegrityError("INSERT ...", {"email": MARK_EMAIL}, exc) from exc
    except IntegrityError as outer:
        try:
            raise RuntimeError("while saving") from None
        except RuntimeError:
            try:
                raise ValueError("wrapped") from outer
            except ValueError as final:
                rendered = safe_traceback(final)
    assert MARK_EMAIL not in rendered
    assert "asyncpg.exceptions.UniqueViolationError: [SQLSTATE 23505;" in rendered
    assert "sqlalchemy.exc.IntegrityError: [SQLSTATE 23505;" in rendered
    assert "ValueError: wrapped" in rendered
    assert "direct cause" in rendered
