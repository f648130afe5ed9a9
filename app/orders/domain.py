"""Orders in the domain registry (app/domains.py)."""

from app.domains import Domain
from app.orders import models

DOMAIN = Domain(name="orders", models=models)
