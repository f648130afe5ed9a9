"""The second baseline: a plain FastAPI + SQLAlchemy ORM app, written the way the FastAPI tutorial
writes one: one `AsyncSession` per request through a `Depends` dependency, a declarative entity, a
pydantic `response_model`, and a strawberry GraphQL endpoint whose context carries the request's
session. No auth, no rate limit, no events, no logging.

    ORM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/kehu_bench_orm \
        uv run uvicorn bench.orm_app:app --loop uvloop --http httptools --no-access-log

`GET /customers/{id}` (session.get, 404 if missing), `POST /customers` (session.add, commit,
refresh, 201), `POST /graphql` with `customer(id: ID!)`. Same table as `bench/raw_app.py` (its SCHEMA,
created and seeded by `bench/run.py`). The pool is ORM_POOL_SIZE connections (default 10) and never
grows beyond it, as the raw app's and Kehu's.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

import strawberry
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from strawberry.fastapi import BaseContext, GraphQLRouter

POOL_SIZE = int(os.environ.get("ORM_POOL_SIZE", "10"))
DATABASE_URL = os.environ.get(
    "ORM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/kehu_bench_orm"
).replace("postgresql://", "postgresql+asyncpg://", 1)

engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE, max_overflow=0)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


# --------------------------------------------------------------------------- model


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str | None] = mapped_column(Text, unique=True)
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CustomerIn(BaseModel):
    email: str
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    tags: list[str] = []


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str | None
    first_name: str | None
    last_name: str | None
    city: str | None
    tags: list[str]
    created_at: datetime


# --------------------------------------------------------------------------- GraphQL


@strawberry.type(name="Customer")
class CustomerType:
    id: strawberry.ID
    email: str | None
    first_name: str | None
    last_name: str | None
    city: str | None
    tags: list[str]


class Context(BaseContext):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self.session = session


async def get_context(session: SessionDep) -> Context:
    return Context(session)


@strawberry.type
class Query:
    @strawberry.field
    async def customer(
        self, info: strawberry.Info[Context, None], id: strawberry.ID
    ) -> CustomerType | None:
        try:
            key = uuid.UUID(str(id))
        except ValueError:
            return None
        row = await info.context.session.get(Customer, key)
        if row is None:
            return None
        return CustomerType(
            id=strawberry.ID(str(row.id)),
            email=row.email,
            first_name=row.first_name,
            last_name=row.last_name,
            city=row.city,
            tags=row.tags,
        )


schema = strawberry.Schema(query=Query)


# --------------------------------------------------------------------------- app


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
app.include_router(GraphQLRouter(schema, context_getter=get_context), prefix="/graphql")


@app.get("/customers/{customer_id}", response_model=CustomerOut)
async def read_customer(customer_id: uuid.UUID, session: SessionDep) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise HTTPException(status_code=404, detail="Customer not found")
    return customer


@app.post("/customers", response_model=CustomerOut, status_code=201)
async def create_customer(body: CustomerIn, session: SessionDep) -> Customer:
    customer = Customer(**body.model_dump())
    session.add(customer)
    await session.commit()
    await session.refresh(customer)
    return customer
