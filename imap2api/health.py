"""Liveness, readiness and metrics endpoints for operators and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from imap2api.config import settings
from imap2api.crud import status as crud_status
from imap2api.db import pending_migrations, session_scope
from imap2api.metrics import render

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


def _readiness() -> dict[str, Any]:
    """Check the database, migrations and (when configured) Redis; each check says ok or why not."""
    checks: dict[str, str] = {}
    try:
        with session_scope() as session:
            crud_status.database_answers(session)
        checks["database"] = "ok"
        pending = pending_migrations()
        checks["migrations"] = (
            "ok" if not pending else f"pending: {', '.join(pending)} (run `imap2api migrate`)"
        )
    except Exception as exc:  # noqa: BLE001 - readiness reports failures, it does not raise them
        checks["database"] = f"unavailable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
    if settings.redis_url:
        try:
            import redis

            redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"unavailable: {type(exc).__name__}"
    else:
        checks["broker"] = "ok (embedded)"
    return checks


@router.get("/readyz")
async def readyz() -> JSONResponse:
    """Ready to serve: 200 when every check passes, 503 with the failing checks otherwise."""
    checks = await run_in_threadpool(_readiness)
    ready = all(value.startswith("ok") for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics (restrict access at the network level: they name no secrets, but servers)."""
    return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)
