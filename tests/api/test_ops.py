import re

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import httpx2 as httpx

from app.core.config import Settings


async def test_healthz(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def _execute(database_url: str, statement: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def test_readyz_ok_then_migrations_pending(
    anon: httpx.AsyncClient, database_url: str
) -> None:
    ready = await anon.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    await _execute(database_url, "UPDATE alembic_version SET version_num = 'old'")
    pending = await anon.get("/readyz")
    assert pending.status_code == 503
    assert pending.headers["content-type"] == "application/problem+json"
    assert pending.json()["code"] == "migrations_pending"
    await _execute(database_url, "DELETE FROM alembic_version")
    assert (await anon.get("/readyz")).json()["code"] == "migrations_pending"


async def test_metrics_is_prometheus_text(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    created = await client.post("/v1/customers", json={"first_name": "Metric"})
    await client.get(f"/v1/customers/{created.json()['id']}")
    response = await anon.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE kehu_http_request_duration_seconds histogram" in response.text
    # Requests are labelled by route template, not by the id in the path.
    assert (
        'kehu_http_request_duration_seconds_count{method="GET",'
        'route="/v1/customers/{customer_id}",status="200"}'
    ) in response.text
    assert created.json()["id"] not in response.text


async def test_docs_are_served_without_a_cdn(anon: httpx.AsyncClient) -> None:
    page = await anon.get("/docs")
    assert page.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts, page.text
    for src in scripts:
        assert src.startswith("/"), f"{src} would need the internet"
        asset = await anon.get(src)
        assert asset.status_code == 200
        assert len(asset.content) > 100_000
    assert (await anon.get("/openapi.json")).json()["openapi"].startswith("3.1")


async def test_unreachable_database_is_a_503_problem(database_url: str, settings: Settings) -> None:
    from asgi_lifespan import LifespanManager

    from app.db import engine as db
    from app.main import create_app

    # Nothing listens on port 1: every connection attempt fails at once.
    db.configure(db.create_engine("postgresql://postgres@127.0.0.1:1/kehu", pool_size=1))
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kehu.test") as http:
            response = await http.get(
                "/v1/customers", headers={"Authorization": "Bearer kehu_unknown"}
            )
            ready = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "2"
    assert "127.0.0.1" not in response.text
    assert ready.status_code == 503


async def test_readyz_on_an_empty_database_says_migrations_pending(
    anon: httpx.AsyncClient, database_url: str
) -> None:
    await _execute(database_url, "DROP TABLE alembic_version")
    response = await anon.get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "migrations_pending"
    assert "kehu migrate" in response.json()["detail"]
