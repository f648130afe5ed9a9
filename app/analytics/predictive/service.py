"""The read side of the predictive models (the fits themselves run in the refresh: ``step``)."""

from app.analytics.predictive import repository
from app.analytics.predictive.schemas import ModelFitList
from app.core.auth import Caller
from app.db import Connection

READ_SCOPE = "analytics:read"


async def list_models(conn: Connection, caller: Caller) -> ModelFitList:
    caller.require(READ_SCOPE)
    return ModelFitList(data=await repository.newest_fits(conn))
