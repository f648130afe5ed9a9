"""The service starts without a usable database and answers 503 problems until it has one."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2 as httpx
import pytest
from asgi_lifespan import LifespanManager

from app.core.config import Settings
from app.main import create_app
from tests.fixtures import database

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/kehu"


@pytest.fixture
async def empty_database(db_server: str) -> AsyncIterator[str]:
    """A database that exists but has never been migrated."""
    name, url = await database.create_empty(db_server, "kehu_test_unmigrated")
    yield url
    await database.drop(db_server, name)


@asynccontextmanager
async def _client_for(url: str, *, run_worker: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(log_level="warning", run_worker=run_worker, rate_limit="1000/minute")
    app = create_app(settings, database_url=url)
    async with LifespanManager(app, startup_timeout=20, shutdown_timeout=20):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://kehu.test",
            headers={"Authorization": "Bearer kehu_not_checked_yet"},
        ) as client:
            yield client


def _assert_not_ready(response: httpx.Response, code: str) -> None:
    """A 503 problem with this code, telling the client when to try again."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert int(response.headers["retry-after"]) >= 1


async def test_unreachable_database_starts_and_answers_503(db_server: str) -> None:
    async with _client_for(UNREACHABLE, run_worker=True) as client:
        assert (await client.get("/healthz")).status_code == 200
        _assert_not_ready(await client.get("/readyz"), "database_unavailable")
        _assert_not_ready(await client.get("/v1/customers"), "database_unavailable")
        graphql = await client.post(
            "/graphql", json={"query": "{ customers { edges { cursor } } }"}
        )
        _assert_not_ready(graphql, "database_unavailable")


async def test_unmigrated_database_answers_migrations_pending(empty_database: str) -> None:
    async with _client_for(empty_database) as client:
        _assert_not_ready(await client.get("/readyz"), "migrations_pending")
        _assert_not_ready(await client.get("/v1/customers"), "migrations_pending")
        created = await client.post("/v1/customers", json={"first_name": "Early"})
        _assert_not_ready(created, "migrations_pending")


async def test_a_server_start_freezes_the_heap_and_raises_the_gc_threshold(
    database_url: str,
) -> None:
    """What KEHU_GC_THRESHOLD does for a serving process (off for the rest of the tests)."""
    import gc

    before = gc.get_threshold()
    app = create_app(Settings(database_url=database_url, gc_threshold=20_000))
    async with LifespanManager(app):
        assert gc.get_threshold()[0] == 20_000
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
