import uuid
from typing import Annotated

from fastapi import Query, Response, status

from app.api.deps import KehuRoute, ScopeDep, caller_cache
from app.api.problems import problem_doc
from app.api.routing import resource_router
from app.apikeys import service
from app.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageOut


class _SecretRoute(KehuRoute):
    stores_responses = False  # a created key's secret is shown once and never stored


router = resource_router("/api-keys", "admin", route_class=_SecretRoute)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key (admin)")
async def create_api_key(body: ApiKeyCreate, scope: ScopeDep) -> ApiKeyCreated:
    row, secret = await service.create_key(scope.conn, scope.caller, body)
    return ApiKeyCreated(**row.model_dump(), key=secret)


@router.get("", summary="List API keys (admin)", description="Oldest first.")
async def list_api_keys(
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> PageOut[ApiKeyOut]:
    page = await service.list_keys(scope.conn, scope.caller, limit=limit, cursor=cursor)
    return PageOut[ApiKeyOut](
        data=list(page.items),
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key (admin)",
    responses={409: problem_doc("The key is the last active admin key (`last_admin_key`).")},
)
async def revoke_api_key(key_id: uuid.UUID, scope: ScopeDep) -> Response:
    await service.revoke_key(scope.conn, scope.caller, key_id)
    caller_cache.forget(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
