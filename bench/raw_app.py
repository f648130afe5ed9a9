"""The baseline: a minimal FastAPI + raw asyncpg app (one pool), to compare Kehu against.

    RAW_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/kehu_bench_raw \
        uv run uvicorn bench.raw_app:app --loop uvloop --http httptools --no-access-log

`GET /customers/{id}` reads one row by primary key; `POST /customers` inserts one and returns it.
`bench/run.py` creates the table (SCHEMA) and seeds it.
"""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information (as in app/)
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id uuid PRIMARY KEY,
    email text UNIQUE,
    first_name text,
    last_name text,
    city text,
    tags text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
COLUMNS = "id, email, first_name, last_name, city, tags, created_at"
POOL_SIZE = int(os.environ.get("RAW_POOL_SIZE", "10"))


class CustomerIn(BaseModel):
    email: str
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    tags: list[str] = []


def _row(record: asyncpg.Record) -> dict[str, object]:
    row = dict(record)
    row["id"] = str(row["id"])
    row["created_at"] = row["created_at"].isoformat()
    return row


pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(
        os.environ["RAW_DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/customers/{customer_id}")
async def get_customer(customer_id: uuid.UUID) -> dict[str, object]:
    assert pool is not None
    record = await pool.fetchrow(f"SELECT {COLUMNS} FROM customers WHERE id = $1", customer_id)
    if record is None:
        raise HTTPException(404, "not found")
    return _row(record)


@app.post("/customers", status_code=201)
async def create_customer(body: CustomerIn) -> dict[str, object]:
    assert pool is not None
    record = await pool.fetchrow(
        f"INSERT INTO customers (id, email, first_name, last_name, city, tags) "
        f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}",
        uuid.uuid4(),
        body.email,
        body.first_name,
        body.last_name,
        body.city,
        body.tags,
    )
    assert record is not None
    return _row(record)
