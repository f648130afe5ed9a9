"""The service reports in the domain registry (app/domains.py). Reports own no tables: they read
feedback and cases."""

from app.domains import Domain
from app.reports.endpoints import router
from app.reports.graphql import ReportQueries

DOMAIN = Domain(
    name="reports",
    tag="reports",
    description="Service reports computed on demand: satisfaction (NPS, CSAT, CES) and cases "
    "(volume, response and resolution times, SLA breaches, reopens), per day, week or month.",
    router=router,
    graphql_query=ReportQueries,
)
