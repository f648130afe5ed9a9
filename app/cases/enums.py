"""The case vocabularies, shared with feedback and the reports."""

from enum import StrEnum


class CaseCategory(StrEnum):
    PRODUCT_QUALITY = "product_quality"
    SERVICE_ATTITUDE = "service_attitude"
    LOGISTICS = "logistics"
    BILLING = "billing"
    OTHER = "other"


class CasePriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class CaseStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


# The state machine: every legal move, and nothing else (a move to the same status is illegal).
# The one table the service checks, docs/cases.md shows and the tests walk pair by pair. Moving from
# resolved or closed back to open is a reopen (within the reopen window).
TRANSITIONS: dict[CaseStatus, tuple[CaseStatus, ...]] = {
    CaseStatus.OPEN: (CaseStatus.IN_PROGRESS, CaseStatus.WAITING_CUSTOMER, CaseStatus.RESOLVED),
    CaseStatus.IN_PROGRESS: (CaseStatus.WAITING_CUSTOMER, CaseStatus.RESOLVED),
    CaseStatus.WAITING_CUSTOMER: (CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED),
    CaseStatus.RESOLVED: (CaseStatus.CLOSED, CaseStatus.OPEN),
    CaseStatus.CLOSED: (CaseStatus.OPEN,),
}
# Where the SLA clock runs; it pauses in waiting_customer and stops once resolved or closed.
CLOCK_RUNS: frozenset[CaseStatus] = frozenset({CaseStatus.OPEN, CaseStatus.IN_PROGRESS})
# A move out of these to open is a reopen.
DONE: frozenset[CaseStatus] = frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED})
