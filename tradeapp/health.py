"""Liveness and readiness endpoints (/healthz, /readyz)."""

import logging

import redis
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
    def check() -> None:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
        try:
            client.ping()
        finally:
            client.close()

    return check


def readyz(request: HttpRequest) -> JsonResponse:
    """Every backing service is reachable: 200, or 503 naming what is down (each Redis node:
    "redis", or "redis-0", "redis-1", ... with REDIS_URLS)."""
    checks = {"database": _check_database}
    nodes = backends.redis_urls()
    for index, url in enumerate(nodes):
        checks["redis" if len(nodes) == 1 else f"redis-{index}"] = _redis_check(url)
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = f"down: {type(exc).__name__}"
        else:
            results[name] = "ok"
    down = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "unavailable" if down else "ok", "checks": results, "down": down}
    return JsonResponse(body, status=503 if down else 200)
