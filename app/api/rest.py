"""Assembles the /v1 REST routers from the domain registry."""

from fastapi import FastAPI

from app.api.routing import check_pipeline
from app.domains import all_domains

PREFIX = "/v1"


def include_v1(app: FastAPI) -> None:
    """Each domain's router straight into the app under /v1: one level of included routers, not
    two (route matching walks every level on every request)."""
    for domain in all_domains():
        if domain.router is not None:
            app.include_router(check_pipeline(domain.router), prefix=PREFIX)
