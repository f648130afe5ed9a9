"""The fixtures every test can ask for: a database per test, the app on it, keys and clients.

Helpers are not here: build data with tests.fixtures.factories, call and check the API with
tests.fixtures.api."""

import os
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.api import deps
from app.core.config import Settings
from app.db import engine as db
from app.main import create_app
from tests.fixtures import database
from tests.fixtures.factories import KeyFactory, bearer, create_api_key

# No full collection and freeze at each app start (KEHU_GC_THRESHOLD=0), for every Settings a test
# builds. That start-up step is for one long-lived server; run for each of the hundreds of apps a
# test run builds, it scanned the whole, growing test process each time and made the suite several
# times slower. tests/api/test_startup.py turns it on where it is the subject.
os.environ.setdefault("KEHU_GC_THRESHOLD", "0")


@pytest.fixture(scope="session")
async def db_server() -> AsyncIterator[str]:
    url = database.server_url()
    await database.build_template(url)
    yield url
    await database.drop_template(url)


@pytest.fixture(scope="session")
async def clones(db_server: str) -> AsyncIterator[database.Clones]:
    made = database.Clones(db_server)
    yield made
    await made.close()


@pytest.fixture
async def database_url(db_server: str, clones: database.Clones) -> AsyncIterator[str]:
    """A fresh, migrated database for this test, configured as the app's database."""
    name, url = await clones.take()
    db.configure(db.create_engine(url, pool_size=5))
    try:
        yield url
    finally:
        await db.dispose()
        clones.release(name)


@pytest.fixture
def settings() -> Settings:
    return Settings(log_json=True, log_level="warning", rate_limit="100000/minute")


@pytest.fixture
async def app(database_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    deps.reset_rate_limiter()
    deps.caller_cache.clear()
    application = create_app(settings)
    async with LifespanManager(application):
        yield application
    deps.reset_rate_limiter()


@pytest.fixture
async def make_key(database_url: str) -> KeyFactory:
    async def make(*scopes: str, name: str = "test") -> str:
        async with db.unit_of_work() as conn:
            return await create_api_key(conn, *scopes, name=name)

    return make


@pytest.fixture
async def admin_key(make_key: KeyFactory) -> str:
    return await make_key("admin")


@pytest.fixture
async def client(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client authenticated as an admin."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://kehu.test",
        headers=bearer(admin_key),
    ) as http:
        yield http


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client that presents no key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kehu.test") as http:
        yield http
