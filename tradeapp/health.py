"""Liveness and readiness endpoints (/healthz, /readyz)."""

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse

from streaming import backends

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 1.0


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis_check(url: str):
    async def check() -> None:
        # The pooled clients the app uses (this loop's, which serves sockets, and the process's
        # sync one, which serves REST and the admin), not a fresh one: a pool left with stale
        # connections after a Redis restart must show here.
        await asyncio.wait_for(backends.url_client(url).ping(), REDIS_TIMEOUT_S)
        await asyncio.wait_for(
            sync_to_async(backends.url_sync_client(url).ping, thread_sensitive=False)(),
            REDIS_TIMEOUT_S,
        )

    return check


async def readyz(request: HttpRequest) -> JsonResponse:
    """Every backing service is reachable through the connections the app uses: 200, or 503
    naming what is down (each Redis node: "redis", or "redis-0", "redis-1", ... with
    REDIS_URLS)."""
    checks = {"database": sync_to_async(_check_database)}
    nodes = backends.redis_urls()
    for index, url in enumerate(nodes):
        checks["redis" if len(nodes) == 1 else f"redis-{index}"] = _redis_check(url)
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = f"down: {type(exc).__name__}"
        else:
            results[name] = "ok"
    down = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "unavailable" if down else "ok", "checks": results, "down": down}
    return JsonResponse(body, status=503 if down else 200)
