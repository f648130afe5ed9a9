"""The GraphQL request context: the authenticated caller, rate limiting and per-request loaders.

``get_context`` is a FastAPI dependency of the GraphQL routes, so a missing or invalid key (401) or
an exhausted rate limit (429) raises a ``KehuError`` before any GraphQL runs, and the app's error
handler answers with ``application/problem+json`` exactly as on /v1.
"""

from fastapi import Request, Response
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from app.api.deps import authenticate, rate_limiter
from app.core.auth import Caller
from app.core.errors import Unauthorized
from app.customers.loaders import CustomerLoaders


class Context(BaseContext):
    def __init__(self, caller: Caller | None) -> None:
        super().__init__()
        self._caller = caller
        self._customers: CustomerLoaders | None = None

    @property
    def caller(self) -> Caller:
        if self._caller is None:  # only the GraphiQL page is served without a key
            raise Unauthorized()
        return self._caller

    @property
    def customers(self) -> CustomerLoaders:
        if self._customers is None:
            self._customers = CustomerLoaders(self.caller)
        return self._customers


GraphQLInfo = Info[Context, None]


def _wants_graphiql(request: Request) -> bool:
    """A browser asking for the GraphiQL page: a GET without a query that accepts HTML."""
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


async def get_context(request: Request, response: Response) -> Context:
    if _wants_graphiql(request):
        return Context(None)
    caller = await authenticate(request)
    response.headers.update(await rate_limiter().hit(str(caller.key_id)))
    return Context(caller)
