"""Cases in the domain registry (app/domains.py)."""

from app.cases import models
from app.domains import Domain

DOMAIN = Domain(name="cases", models=models)
