"""Interactions in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.interactions import models

DOMAIN = Domain(name="interactions", models=models)
