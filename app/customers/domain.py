"""Customers in the domain registry (app/domains.py)."""

from app.customers import models
from app.customers.endpoints import router
from app.customers.graphql import CustomerMutations, CustomerQueries
from app.domains import Domain

DOMAIN = Domain(
    name="customers",
    tag="customers",
    description="Customer profiles.",
    router=router,
    models=models,
    graphql_query=CustomerQueries,
    graphql_mutation=CustomerMutations,
)
