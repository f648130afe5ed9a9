"""Analytics in the domain registry (app/domains.py)."""

from app.analytics import models, tasks
from app.analytics.endpoints import router
from app.analytics.graphql import METRICS_FIELD, AnalyticsMutations, AnalyticsQueries
from app.domains import Domain

DOMAIN = Domain(
    name="analytics",
    tag="analytics",
    description="Customer value, kept current: each customer's order figures (updated with every "
    "order and refund), and a full refresh, scheduled or on request, as of any day: RFM scores "
    "and segments, value tiers A/B/C, lifecycle stages, BG/NBD and Gamma-Gamma predictions "
    "(P(alive), churn risk, expected purchases, 12-month CLV), and the overview.",
    router=router,
    models=models,
    jobs=tasks.JOBS,
    schedules=tasks.SCHEDULES,
    graphql_query=AnalyticsQueries,
    graphql_mutation=AnalyticsMutations,
    graphql_type_fields=[("Customer", METRICS_FIELD)],
)
