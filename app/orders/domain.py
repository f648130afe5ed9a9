"""Orders in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.orders import models
from app.orders.endpoints import router
from app.orders.graphql import CUSTOMER_FIELD, OrderMutations, OrderQueries
from app.orders.timeline import TIMELINE

DOMAIN = Domain(
    name="orders",
    tag="orders",
    description="Purchases from every channel, with their lines and refunds; each one keeps the "
    "customer's metrics current.",
    router=router,
    models=models,
    graphql_query=OrderQueries,
    graphql_mutation=OrderMutations,
    graphql_type_fields=[("Customer", CUSTOMER_FIELD)],
    timeline=[TIMELINE],
)
