"""What a domain registers to put its records on the customer timeline (``Domain.timeline``).

A source names a table that belongs to a customer (``customer_id`` and ``id`` columns), the column
that dates an entry, the read scope that shows it, and the columns its entries carry as ``data``.
The timeline reads every registered source in one statement (app/timeline/repository.py); a
domain that lands later (orders, the ledger, segment changes) adds itself by registering one.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import ColumnElement, FromClause


@dataclass(frozen=True, kw_only=True)
class TimelineSource:
    # The entry kind clients see and filter on (``?kinds=``): a lower-case noun.
    kind: str
    # The scope a key needs to see these entries; the others are left out of its timeline.
    scope: str
    table: FromClause
    # The column that dates an entry (newest first).
    at: str
    # The columns copied into ``data`` (never personal data: the timeline has no PII view).
    fields: tuple[str, ...]
    description: str
    # Rows of the table that are not entries (a condition on the table), if any.
    where: Callable[[FromClause], ColumnElement[bool]] | None = field(default=None)


@cache
def registered() -> dict[str, TimelineSource]:
    """Every registered source by kind (the domains are imported on first use)."""
    from app.domains import all_domains

    sources: dict[str, TimelineSource] = {}
    for domain in all_domains():
        for source in domain.timeline:
            if source.kind in sources:
                raise RuntimeError(f"Two timeline sources for the kind {source.kind!r}.")
            sources[source.kind] = source
    return dict(sorted(sources.items()))
