"""Assembles the /v1 REST routers from the domain registry."""

from fastapi import APIRouter

from app.api.routing import check_pipeline
from app.domains import all_domains

v1 = APIRouter(prefix="/v1")
for domain in all_domains():
    if domain.router is not None:
        v1.include_router(check_pipeline(domain.router))
