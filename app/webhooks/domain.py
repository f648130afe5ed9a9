"""Webhooks in the domain registry (app/domains.py)."""

from datetime import timedelta

from app.core.config import get_settings
from app.domains import Domain
from app.webhooks import models
from app.webhooks.delivery import Deliverer
from app.webhooks.endpoints import router
from app.webhooks.graphql import WebhookMutations, WebhookQueries
from app.webhooks.service import target_policy


def deliverer() -> Deliverer:
    settings = get_settings()
    return Deliverer(
        target_policy(),
        concurrency=settings.webhook_concurrency,
        connections_per_endpoint=settings.webhook_connections_per_endpoint,
        lease=timedelta(seconds=settings.webhook_lease_seconds),
    )


DOMAIN = Domain(
    name="webhooks",
    tag="webhooks",
    description="Signed deliveries of the event log to partner systems (Standard Webhooks).",
    router=router,
    models=models,
    graphql_query=WebhookQueries,
    graphql_mutation=WebhookMutations,
    runners=[deliverer],
)
