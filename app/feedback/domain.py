"""Feedback in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.feedback import models

DOMAIN = Domain(name="feedback", models=models)
