from fastapi import Response

from app.api.deps import ScopeDep
from app.api.responses import json_response
from app.api.routing import resource_router
from app.rules import service
from app.rules.schemas import RuleCatalogueOut

router = resource_router("/rules", "rules")


@router.get(
    "/fields",
    summary="The rule language's fields",
    description="Every field a rule may name (customer search, segments, webhook filters), with "
    "its type, operators, the operators an index serves, and the values of enum fields; the "
    "events behavioural conditions count or sum, with the fields their `where` may name; and "
    "the limits of a rule. docs/rules.md explains the language. Needs `customers:read`.",
    response_model=RuleCatalogueOut,
)
async def list_rule_fields(scope: ScopeDep) -> Response:
    return json_response(service.catalogue(scope.caller))
