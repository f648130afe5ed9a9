"""The customer filter extended by the rule language: ``CustomerQuery`` (GraphQL's ``filter`` of
``customers``) adds a ``rule``, and ``CustomerSearch`` is the body of ``POST
/v1/customers/search`` (a query, a sort and a page). Kept beside ``schemas.py`` because the rule
catalogue is built from that module's vocabularies."""

from typing import Any

from pydantic import ConfigDict, Field

from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.customers.schemas import CustomerFilter, CustomerSort
from app.rules.schemas import RULE_EXAMPLE, Rule


class CustomerQuery(CustomerFilter):
    """Which customers a list returns: the filters of ``GET /v1/customers`` and a rule; all
    given must hold."""

    rule: Rule | None = Field(
        default=None,
        description="A rule of the rule language (docs/rules.md, `GET /v1/rules/fields`). "
        "Conditions on metrics need `analytics:read`, on orders `orders:read`, on interactions "
        "`interactions:read`, on email, phone or birth_date `pii:read` (403 otherwise).",
    )

    def uses_pii(self) -> bool:
        return super().uses_pii() or (self.rule is not None and self.rule.uses_pii())


_SEARCH: dict[str, Any] = {
    "rule": RULE_EXAMPLE,
    "q": "wang",
    "sort": "-created_at",
    "limit": 50,
}


class CustomerSearch(CustomerQuery):
    """The body of ``POST /v1/customers/search``: the filters, a rule, free text, a sort and a
    page. Pass the previous answer's ``next_cursor`` (with the same sort) for the next page."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [_SEARCH]}
    )

    sort: CustomerSort = Field(
        default=CustomerSort.created_at_desc, description="Field, `-` for descending."
    )
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=2000)
