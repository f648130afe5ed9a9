"""Assembles the /v1 REST routers."""

from fastapi import APIRouter

from app.api.problems import COMMON_PROBLEMS
from app.apikeys.endpoints import router as api_keys
from app.customers.endpoints import router as customers
from app.events.endpoints import router as events

v1 = APIRouter(prefix="/v1", responses=COMMON_PROBLEMS)
for router in (customers, events, api_keys):
    v1.include_router(router)
