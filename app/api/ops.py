"""Operational endpoints: liveness, readiness (database reachable, migrations at head)."""

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.api import metrics as scrape
from app.api.problems import problem_doc, problem_response
from app.db import read_connection
from app.db.migrations import applied_revision, head_revision

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = await scrape.render()
    return Response(body, media_type=content_type)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and its schema is at the latest migration",
    responses={503: problem_doc("Not ready; `detail` and `code` say why.")},
)
async def readyz(request: Request) -> Any:
    expected = head_revision()
    try:
        async with read_connection() as conn:
            current = await applied_revision(conn)
    except Exception:
        return problem_response(
            503,
            "database_unavailable",
            "The database is not reachable.",
            request.state.request_id,
            headers={"Retry-After": "2"},
        )
    if current != expected:
        return problem_response(
            503,
            "migrations_pending",
            f"The database schema is at {current}, not {expected}: run `kehu migrate`.",
            request.state.request_id,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ready", "database": "ok", "schema_revision": current})
