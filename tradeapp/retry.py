"""The one retry policy for outside services (Redis, the database): which errors are transient,
the backoff between attempts, and how long an outage is ridden out (SERVICE_RETRY_LIMIT_S). The
run's turn retries after an LLM failure (debates.runs.run) use the same backoff.

Callers wrap one idempotent-enough step each (an event-log append, a channel-layer publish, one
short database transaction): ``await retry_async(step, what="...")`` or ``retry_sync(...)``.
Past the limit the last error is raised as ``ServiceUnavailable``, whose message names the
service but never its address (errors reach users through ``Debate.error``).
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY_S = 0.1
MAX_DELAY_S = 2.0


class ServiceUnavailable(Exception):
    """A service stayed unreachable past SERVICE_RETRY_LIMIT_S; the message is safe to show."""

    def __init__(self, service: str, seconds: float) -> None:
        super().__init__(f"The {service} was unavailable for more than {seconds:g} s.")
        self.service = service


def service_of(exc: BaseException) -> str | None:
    """'event service (Redis)' or 'database' for a transient error of that service, else None."""
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.BusyLoadingError):
        return "event service (Redis)"
    if isinstance(exc, redis.ResponseError) and str(exc).startswith(("LOADING", "READONLY")):
        return "event service (Redis)"
    if isinstance(exc, InterfaceError):
        return "database"  # a connection closed under us
    if isinstance(exc, OperationalError):
        # PostgreSQL: psycopg's OperationalError is a lost or refused connection (incl. a
        # terminated backend); SQLite: only a lock is transient, not e.g. a missing table.
        cause = type(exc.__cause__).__module__ if exc.__cause__ is not None else ""
        if cause.startswith("psycopg") or "locked" in str(exc) or "busy" in str(exc):
            return "database"
    return None


def limit_s() -> float:
    """How long an outage is ridden out before a step gives up (SERVICE_RETRY_LIMIT_S)."""
    return max(float(getattr(settings, "SERVICE_RETRY_LIMIT_S", 30.0)), 0.0)


def delays(first: float = FIRST_DELAY_S, cap: float = MAX_DELAY_S):
    """Backoff between attempts: `first` doubling up to `cap` (0.1 s to 2 s), with jitter."""
    delay = first
    while True:
        yield delay * random.uniform(0.8, 1.2)
        delay = min(delay * 2, cap)


async def retry_async(step: Callable[[], Awaitable[T]], *, what: str, limit: float | None = None):
    """Await ``step()`` until it succeeds, retrying transient service errors for ``limit`` s."""
    limit = limit_s() if limit is None else limit
    deadline = time.monotonic() + limit
    backoff = delays()
    attempt = 0
    while True:
        try:
            return await step()
        except Exception as exc:
            service = service_of(exc)
            if service is None:
                raise
            attempt += 1
            delay = next(backoff)
            if time.monotonic() + delay > deadline:
                raise ServiceUnavailable(service, limit) from exc
            if attempt == 1:
                logger.warning("%s: %s unreachable (%s); retrying", what, service, _name(exc))
            await asyncio.sleep(delay)


def retry_sync(step: Callable[[], T], *, what: str, limit: float | None = None) -> T:
    """Call ``step()`` until it succeeds, retrying transient service errors for ``limit`` s
    (in a worker thread: it sleeps)."""
    limit = limit_s() if limit is None else limit
    deadline = time.monotonic() + limit
    backoff = delays()
    attempt = 0
    while True:
        try:
            return step()
        except Exception as exc:
            service = service_of(exc)
            if service is None:
                raise
            attempt += 1
            delay = next(backoff)
            if time.monotonic() + delay > deadline:
                raise ServiceUnavailable(service, limit) from exc
            if attempt == 1:
                logger.warning("%s: %s unreachable (%s); retrying", what, service, _name(exc))
            _reset_database(exc)
            time.sleep(delay)


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _reset_database(exc: BaseException) -> None:
    """After a lost database connection, drop it so the next attempt opens a fresh one."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return
    from django.db import connection

    try:
        if connection.in_atomic_block:
            return  # the outer transaction owns the connection: let it fail as a whole
        connection.close()
    except Exception:
        logger.debug("closing a broken database connection failed", exc_info=True)
