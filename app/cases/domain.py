"""Cases in the domain registry (app/domains.py)."""

from app.cases import models, tasks
from app.cases.endpoints import router
from app.cases.graphql import CUSTOMER_FIELD, TRANSITIONS_FIELD, CaseMutations, CaseQueries
from app.cases.timeline import OPENED, STATUS_CHANGES
from app.domains import Domain

DOMAIN = Domain(
    name="cases",
    tag="cases",
    description="Complaints and service requests: an explicit state machine, SLA deadlines in "
    "business time with breach flags, resolutions, and the SLA policies per priority.",
    router=router,
    models=models,
    jobs=tasks.JOBS,
    schedules=tasks.SCHEDULES,
    graphql_query=CaseQueries,
    graphql_mutation=CaseMutations,
    graphql_type_fields=[("Customer", CUSTOMER_FIELD), ("Case", TRANSITIONS_FIELD)],
    timeline=[OPENED, STATUS_CHANGES],
)
