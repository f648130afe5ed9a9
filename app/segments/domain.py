"""Segments in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.segments import models, tasks
from app.segments.endpoints import router
from app.segments.follower import Follower
from app.segments.graphql import CUSTOMER_FIELD, SegmentMutations, SegmentQueries
from app.segments.timeline import ENTERED, EXITED

DOMAIN = Domain(
    name="segments",
    tag="segments",
    description="Named sets of customers: dynamic (a rule of the rule language, membership kept "
    "in step with it, with entered and exited events) or static (members listed by hand), each "
    "with its membership history (`?as_of=`).",
    router=router,
    models=models,
    jobs=tasks.JOBS,
    schedules=tasks.SCHEDULES,
    timeline=[ENTERED, EXITED],
    runners=[Follower],
    graphql_query=SegmentQueries,
    graphql_mutation=SegmentMutations,
    graphql_type_fields=[("Customer", CUSTOMER_FIELD)],
)
