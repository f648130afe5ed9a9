"""The rule language's use cases: the published catalogue, and what a caller needs to run a rule."""

from app.core.auth import Caller
from app.core.errors import Forbidden
from app.rules.catalogue import (
    ATTRIBUTE_FAMILY,
    CONSENT_FAMILY,
    EVENTS,
    METRICS_FIELDS,
    PROFILE_FIELDS,
    Source,
)
from app.rules.schemas import (
    MAX_CHILDREN,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_LIST,
    MAX_WINDOW_DAYS,
    Rule,
    RuleCatalogueOut,
    RuleEventOut,
    RuleFieldOut,
)

# The read scope behind each place a rule reads: a rule is a question about that data, so a key
# may ask it only if it may read the data.
SOURCE_SCOPES: dict[Source, str] = {
    Source.profile: "customers:read",
    Source.metrics: "analytics:read",
    Source.orders: "orders:read",
    Source.order_items: "orders:read",
    Source.interactions: "interactions:read",
}


def catalogue(caller: Caller) -> RuleCatalogueOut:
    caller.require("customers:read")
    fields = [*PROFILE_FIELDS, ATTRIBUTE_FAMILY, CONSENT_FAMILY, *METRICS_FIELDS]
    return RuleCatalogueOut(
        fields=[RuleFieldOut.of(spec) for spec in fields],
        events=[
            RuleEventOut(
                name=event.name,
                description=event.description,
                fields=[RuleFieldOut.of(spec) for spec in event.fields.values()],
                summable=list(event.summable),
                scope=SOURCE_SCOPES[event.source],
            )
            for event in EVENTS.values()
        ],
        limits={
            "depth": MAX_DEPTH,
            "conditions": MAX_CONDITIONS,
            "children": MAX_CHILDREN,
            "list_values": MAX_LIST,
            "window_days": MAX_WINDOW_DAYS,
        },
    )


def check_may_run(caller: Caller, rule: Rule) -> None:
    """403 unless the caller may read everything ``rule`` reads: PII fields need pii:read (a
    condition on an email would tell who is a customer), metrics analytics:read, order and
    interaction conditions their read scopes."""
    if rule.uses_pii() and not caller.has("pii:read"):
        raise Forbidden(
            "A rule on email, phone or birth_date needs the pii:read scope.",
            code="pii_read_required",
        )
    caller.require(*sorted({SOURCE_SCOPES[source] for source in rule.sources()}))
