import re

import asyncpg


async def test_healthz(anon) -> None:
    response = await anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_ok_then_migrations_pending(anon, database_url) -> None:
    ready = await anon.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE alembic_version SET version_num = 'old'")
    finally:
        await conn.close()
    pending = await anon.get("/readyz")
    assert pending.status_code == 503
    assert pending.headers["content-type"] == "application/problem+json"
    assert pending.json()["code"] == "migrations_pending"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM alembic_version")
    finally:
        await conn.close()
    assert (await anon.get("/readyz")).json()["code"] == "migrations_pending"


async def test_metrics_is_prometheus_text(client, anon) -> None:
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


async def test_docs_are_served_without_a_cdn(anon) -> None:
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
