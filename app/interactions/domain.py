"""Interactions in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.interactions import models, tasks
from app.interactions.endpoints import router
from app.interactions.graphql import CUSTOMER_FIELD, InteractionMutations, InteractionQueries
from app.interactions.timeline import TIMELINE

DOMAIN = Domain(
    name="interactions",
    tag="interactions",
    description="Contacts with customers on every channel, and follow-ups still to make.",
    router=router,
    models=models,
    jobs=tasks.JOBS,
    schedules=tasks.SCHEDULES,
    graphql_query=InteractionQueries,
    graphql_mutation=InteractionMutations,
    graphql_type_fields=[("Customer", CUSTOMER_FIELD)],
    timeline=[TIMELINE],
)
