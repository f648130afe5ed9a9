"""The refresh step that recomputes item statistics and co-purchase pairs."""

import uuid
from datetime import date
from typing import Any

from app.db import Connection


async def refresh(conn: Connection, *, as_of: date, refresh_id: uuid.UUID | None) -> dict[str, Any]:
    raise NotImplementedError("being written")
