"""The rule language in the domain registry (app/domains.py): no tables, the catalogue endpoint."""

from app.domains import Domain
from app.rules.endpoints import router

DOMAIN = Domain(
    name="rules",
    tag="rules",
    description="The one rule language of customer search, segments and webhook filters: its "
    "published field catalogue (docs/rules.md).",
    router=router,
)
