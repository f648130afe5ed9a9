"""Property-based API tests: every REST operation, generated from the published OpenAPI document.

Schemathesis drives the in-process ASGI app on its own event-loop thread, so this module builds its
own migrated database and app (with an engine owned by the app's lifespan) instead of the per-test
fixtures, and shares them across all operations.
"""

import asyncio
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import schemathesis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS as CHECK_REGISTRY
from schemathesis.checks import is_check_class
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Ok, Result
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi import checks as openapi_checks

from app.api import deps
from app.core.config import Settings
from app.db import engine as db
from app.main import create_app
from tests.fixtures import database
from tests.fixtures.factories import bearer, create_api_key

T = TypeVar("T")
CALLS: defaultdict[tuple[str, str], Counter[int]] = defaultdict(Counter)
# Every check schemathesis has (the OpenAPI ones register themselves when their module is imported).
assert openapi_checks.status_code_conformance in CHECK_REGISTRY.get_all()
# All but one: positive_data_acceptance assumes that any request valid by the schema is accepted,
# which cannot hold here: cursors are HMAC-signed opaque tokens (any other string is a 400), an
# If-Match names a version that must be the current one (412), and phone numbers (libphonenumber),
# email addresses (email-validator) and uniqueness are checked beyond what JSON Schema can say.
# Its counterpart, negative_data_rejection, runs.
# (Only check functions: call_and_validate takes no check classes; none are registered today.)
CHECKS = [
    c
    for c in CHECK_REGISTRY.get_all()
    if not is_check_class(c) and c is not openapi_checks.positive_data_acceptance
]
# The REST surface; /graphql has its own tests.
REST_PATHS = r"^/(v1/|healthz$|readyz$)"


def _template(path: str) -> str:
    """The operation path a request path belongs to (/v1/customers/<anything> ->
    /v1/customers/{customer_id}); literal paths (/v1/customers/batch) win over parameters."""
    for template, pattern in _PATH_PATTERNS:
        if pattern.fullmatch(path):
            return template
    return path


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop (pytest-asyncio's loop belongs to others)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


async def _admin_key(url: str) -> str:
    engine = db.create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            return await create_api_key(conn, "admin", name="schemathesis")
    finally:
        await engine.dispose()


class _ModuleApp:
    """The ASGI app schemathesis calls. It forwards to this module's Kehu app, started (lifespan,
    engine) on schemathesis's own event loop the first time it is called; stopped there too."""

    def __init__(self) -> None:
        self.target: FastAPI | None = None
        self._lifespan: LifespanManager | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # schemathesis's own lifespan handshake: nothing to do
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.target is not None, "the api_key fixture starts the app"
        if self._lifespan is None:
            self._loop = asyncio.get_running_loop()
            self._lifespan = LifespanManager(self.target)
            await self._lifespan.__aenter__()

        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                CALLS[(scope["method"], _template(scope["path"]))][message["status"]] += 1
            await send(message)

        await self.target(scope, receive, record)

    def stop(self) -> None:
        if self._lifespan is not None and self._loop is not None:
            done = asyncio.run_coroutine_threadsafe(
                self._lifespan.__aexit__(None, None, None), self._loop
            )
            done.result(timeout=30)
        self.target, self._lifespan, self._loop = None, None, None


module_app = _ModuleApp()
_OPENAPI = create_app(Settings()).openapi()
_PATH_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (template, re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))))
    for template in sorted(_OPENAPI["paths"], key=lambda t: t.count("{"))
]
schema = schemathesis.openapi.from_dict(_OPENAPI).include(path_regex=REST_PATHS)
schema.app = module_app


@pytest.fixture(scope="module")
def api_key(db_server: str) -> Iterator[str]:
    """A migrated database for the whole module, the app on it, and an admin key."""
    name, url = _run(database.clone(db_server))
    key = _run(_admin_key(url))
    deps.caller_cache.clear()
    module_app.target = create_app(
        # Schemathesis sends invalid keys on purpose (ignored_auth) thousands of times: lift both
        # limits so it sees the 401s it checks for instead of the throttle.
        Settings(
            log_json=True,
            log_level="error",
            rate_limit="1000000/minute",
            auth_failure_limit="1000000/minute",
        ),
        database_url=url,
    )
    try:
        yield key
    finally:
        module_app.stop()
        deps.reset_rate_limiter()
        _run(database.drop(db_server, name))


def _operation(
    result: Result[APIOperation[Any, Any, Any, Any], InvalidSchema],
) -> APIOperation[Any, Any, Any, Any]:
    """An operation of the schema; an operation the schema could not describe fails collection."""
    assert isinstance(result, Ok), result.err()
    return result.ok()


OPERATIONS = [_operation(result) for result in schema.get_all_operations()]


# Hypothesis drives each operation directly: schemathesis's own pytest plugin unbalances pytest's
# output capture on pytest 9 (the run's summary vanished), so it is disabled in pyproject.toml.
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_rest_operation_conforms(operation: APIOperation[Any, Any, Any, Any], api_key: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=50,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=bearer(api_key), checks=CHECKS)

    conforms()


def test_every_operation_got_at_least_50_examples() -> None:
    """Runs after the generated tests (file order): proves they reached the app, 50+ times each."""
    for op in OPERATIONS:
        calls = sum(CALLS[(op.method.upper(), _template(op.path))].values())
        wanted = 50 if op.path.startswith("/v1/") else 1
        assert calls >= wanted, f"{op.method.upper()} {op.path}: {calls} calls"
