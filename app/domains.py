"""The one list of domains. The REST routers and OpenAPI tags (app/api/rest.py, app/main.py), the ORM
models behind ``Base.metadata`` (app/db/models.py: Alembic and the drift test), the worker's jobs and
schedules (app/worker/registry.py) and GraphQL are all wired from it, so adding a domain touches no
shared file but this one: write ``app/<domain>/domain.py`` and name it in ``all_domains``.

The shared layers (app/api, app/db) name no domain package themselves; what the request pipeline
needs of particular domains is re-exported here (``tests/test_layers.py`` checks both).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

from fastapi import APIRouter

# What every REST request needs, before any domain's endpoint runs: the API key behind it, and
# Idempotency-Key on writes. Imported here (they import no API module, so no cycle) for app/api.
from app.apikeys import service as api_keys
from app.core.auth import Caller
from app.idempotency import service as idempotency
from app.worker.queue import JobHandler

__all__ = ["Domain", "all_domains", "api_keys", "idempotency"]


@dataclass(frozen=True, kw_only=True)
class Domain:
    """What one domain package contributes to the app; each exports its own as
    ``app.<name>.domain.DOMAIN``."""

    # The package, app/<name>/.
    name: str
    # The OpenAPI tag of its REST operations and the tag's description (None: no REST surface).
    tag: str | None = None
    description: str = ""
    # Its /v1 router, built with app.api.routing.resource_router (None: no REST surface).
    router: APIRouter | None = None
    # Its models module (tables): imported so Base.metadata knows them.
    models: ModuleType | None = None
    # Worker jobs by entrypoint name (``<domain>.<job>``), and cron expressions (UTC) for the ones
    # that run on a schedule (a name in ``jobs``).
    jobs: dict[str, JobHandler] = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)
    # GraphQL, wired by app/api/graphql: root field classes merged into Query and Mutation, the
    # extra types to register, and a factory of the per-request DataLoaders for a caller.
    graphql_query: type | None = None
    graphql_mutation: type | None = None
    graphql_types: list[type] = field(default_factory=list)
    loaders: Callable[[Caller], Any] | None = None


@cache
def all_domains() -> tuple[Domain, ...]:
    """Every domain, in the order their tags appear in the OpenAPI document. Imported on first use:
    the domain modules import the API layer, which imports this module."""
    from app.apikeys import domain as apikeys
    from app.customers import domain as customers
    from app.events import domain as events
    from app.idempotency import domain as idempotency_store

    domains = tuple(m.DOMAIN for m in (customers, events, apikeys, idempotency_store))
    _check(domains)
    return domains


def _check(domains: tuple[Domain, ...]) -> None:
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise RuntimeError(f"Domain names must be unique: {names}")
    jobs = [job for d in domains for job in d.jobs]
    if len(set(jobs)) != len(jobs):
        raise RuntimeError(f"Job names must be unique across domains: {sorted(jobs)}")
    for d in domains:
        unknown = set(d.schedules) - set(d.jobs)
        if unknown:
            raise RuntimeError(f"Domain {d.name} schedules jobs it does not define: {unknown}")
        if (d.router is None) != (d.tag is None):
            raise RuntimeError(f"Domain {d.name}: a REST router and its tag go together.")
