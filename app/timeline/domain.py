"""The customer timeline in the domain registry: no tables and no router of its own (REST serves it
as ``GET /v1/customers/{id}/timeline``); it adds ``Customer.timeline`` to GraphQL and reads the
sources the other domains register (``Domain.timeline``)."""

from app.domains import Domain
from app.timeline.graphql import TIMELINE_FIELD

DOMAIN = Domain(name="timeline", graphql_type_fields=[("Customer", TIMELINE_FIELD)])
