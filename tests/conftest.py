from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2 as httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.api import deps
from app.apikeys import service as apikeys
from app.apikeys.schemas import ApiKeyCreate
from app.core.config import Settings
from app.db import engine as db
from app.main import create_app
from tests.fixtures import database

KeyFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
async def db_server() -> AsyncIterator[str]:
    url = database.server_url()
    await database.build_template(url)
    yield url
    await database.drop_template(url)


@pytest.fixture
async def database_url(db_server: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test, configured as the app's database."""
    name, url = await database.clone(db_server)
    db.configure(db.create_engine(url, pool_size=5))
    try:
        yield url
    finally:
        await db.dispose()
        await database.drop(db_server, name)


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
            _, secret = await apikeys.create_key(
                conn, None, ApiKeyCreate(name=name, scopes=list(scopes) or ["admin"])
            )
        return secret

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
        headers={"Authorization": f"Bearer {admin_key}"},
    ) as http:
        yield http


@pytest.fixture
def anon(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kehu.test")


def customer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "first_name": "Wei",
        "last_name": "Wang",
        "email": "wei.wang@example.com",
        "phone": "+8613800138000",
        "country": "CN",
        "city": "Shanghai",
        "tags": ["outdoor"],
    }
    body.update(overrides)
    return body
