"""Imports every domain's models (through the domain registry) so ``Base.metadata`` is complete:
Alembic's env and the migration drift test use it."""

from app.db.base import Base
from app.db.secrets import ServerSecret
from app.domains import all_domains

# Importing a models module registers its tables; the registry has imported each by now.
MODELS = [domain.models for domain in all_domains() if domain.models is not None]

__all__ = ["MODELS", "Base", "ServerSecret"]
