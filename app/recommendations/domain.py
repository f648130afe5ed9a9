"""Recommendations in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.recommendations import models
from app.recommendations.endpoints import router
from app.recommendations.graphql import CUSTOMER_FIELD

DOMAIN = Domain(
    name="recommendations",
    tag="recommendations",
    description="Cross-sell and upsell candidates per customer, from item-to-item co-purchase "
    "statistics (support, confidence, lift) that the analytics refresh recomputes. Scope "
    "`analytics:read`.",
    router=router,
    models=models,
    graphql_type_fields=[("Customer", CUSTOMER_FIELD)],
)
