"""The refresh step that recomputes item statistics and co-purchase pairs."""

import uuid
from datetime import date
from typing import Any


async def refresh(*, as_of: date, refresh_id: uuid.UUID | None) -> dict[str, Any]:
    raise NotImplementedError("being written")
