"""Analytics in the domain registry (app/domains.py)."""

from app.analytics import models
from app.domains import Domain

DOMAIN = Domain(name="analytics", models=models)
