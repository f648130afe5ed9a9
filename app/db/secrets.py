"""Server-wide secrets kept in the database, so every process of one deployment shares them without
configuration. A migration creates them from PostgreSQL's strong random generator."""

from datetime import datetime

from sqlalchemy import DateTime, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.engine import read_connection

CURSOR_KEY = "cursor_signing_key"


class ServerSecret(Base):
    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


async def load_cursor_key() -> bytes:
    async with read_connection() as conn:
        value = (
            await conn.execute(select(ServerSecret.value).where(ServerSecret.name == CURSOR_KEY))
        ).scalar_one()
    return bytes.fromhex(value)
