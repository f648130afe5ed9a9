"""Recommendations in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.recommendations import models

DOMAIN = Domain(name="recommendations", models=models)
