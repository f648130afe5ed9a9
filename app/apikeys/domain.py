"""API keys in the domain registry (app/domains.py); their operations are the "admin" tag."""

from app.apikeys import models
from app.apikeys.endpoints import router
from app.domains import Domain

DOMAIN = Domain(
    name="apikeys",
    tag="admin",
    description="API keys.",
    router=router,
    models=models,
)
