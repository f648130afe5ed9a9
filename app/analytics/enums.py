"""The analytics vocabularies (docs/analytics.md explains each)."""

from enum import StrEnum


class RfmSegment(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALIST = "potential_loyalist"
    NEW = "new"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    ABOUT_TO_SLEEP = "about_to_sleep"
    AT_RISK = "at_risk"
    CANNOT_LOSE = "cannot_lose"
    LOST = "lost"


class ValueTier(StrEnum):
    # The seeds' key, normal and potential customers.
    A = "A"
    B = "B"
    C = "C"


class LifecycleStage(StrEnum):
    PROSPECT = "prospect"
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"
    REACTIVATED = "reactivated"


class RefreshStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ModelKind(StrEnum):
    BG_NBD = "bg_nbd"
    GAMMA_GAMMA = "gamma_gamma"
