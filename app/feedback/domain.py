"""Feedback in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.feedback import models
from app.feedback.endpoints import router
from app.feedback.graphql import CUSTOMER_FIELD, FeedbackMutations, FeedbackQueries
from app.feedback.timeline import TIMELINE

DOMAIN = Domain(
    name="feedback",
    tag="feedback",
    description="Survey answers (NPS, CSAT, CES) and the one-time survey links of resolved cases. "
    "No scope of its own: submitting needs `interactions:write`, reading `interactions:read`; a "
    "survey link is answered without an API key.",
    router=router,
    models=models,
    graphql_query=FeedbackQueries,
    graphql_mutation=FeedbackMutations,
    graphql_type_fields=[("Customer", CUSTOMER_FIELD)],
    timeline=[TIMELINE],
)
