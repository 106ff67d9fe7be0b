"""Viewer rows: open on connect, close on disconnect, and sweep the ones a dead process left open.

No database write happens per token: a Viewer row is written twice per connection.
Stale rows (SIGTERM may cancel a consumer without running its disconnect): with REDIS_URL every
process refreshes a key per open viewer (TTL 3 x WS_PING_INTERVAL_S) on its hub tick, and any
process closes open rows older than that TTL whose key is gone. Without Redis (one process),
open rows that are not this process's and connected before it started are closed.
"""

import logging
from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from debates.models import Debate, Viewer
from debates.selectors import live_viewers
from streaming import backends

logger = logging.getLogger(__name__)


def _alive_ttl_s() -> int:
    return max(int(3 * float(settings.WS_PING_INTERVAL_S)), 5)


@transaction.atomic
def viewer_open(*, debate: Debate, user, channel_name: str, client_ip: str | None) -> Viewer:
    """Record a viewer whose socket just opened."""
    return Viewer.objects.create(
        debate=debate,
        user=user if getattr(user, "is_authenticated", False) else None,
        channel_name=channel_name,
        client_ip=client_ip,
    )


def viewer_close(*, viewer_id: int) -> None:
    """Mark a viewer's socket closed (idempotent)."""
    Viewer.objects.filter(pk=viewer_id, disconnected_at__isnull=True).update(
        disconnected_at=timezone.now()
    )


def live_viewer_count(*, debate_id) -> int:
    """How many sockets watch the debate now."""
    return live_viewers(debate_id=debate_id).count()


async def viewers_keepalive(viewer_ids) -> None:
    """Refresh the liveness keys of this process's open viewers (Redis only)."""
    if not backends.redis_url() or not viewer_ids:
        return
    ttl = _alive_ttl_s()
    async with backends.redis_client().pipeline(transaction=False) as pipe:
        for viewer_id in viewer_ids:
            pipe.set(backends.key("viewer", viewer_id), 1, ex=ttl)
        await pipe.execute()


def _stale_candidates(local_ids: set[int], before) -> list[int]:
    return list(
        live_viewers()
        .filter(connected_at__lt=before)
        .exclude(pk__in=local_ids)
        .values_list("pk", flat=True)[:5000]
    )


def _close_many(ids: list[int]) -> int:
    return Viewer.objects.filter(pk__in=ids, disconnected_at__isnull=True).update(
        disconnected_at=timezone.now()
    )


async def viewer_sweep_stale(*, local_ids: set[int], process_started_at: float) -> int:
    """Close open Viewer rows whose process is gone; return how many were closed."""
    if backends.redis_url():
        before = timezone.now() - timedelta(seconds=_alive_ttl_s())
        candidates = await database_sync_to_async(_stale_candidates)(local_ids, before)
        if not candidates:
            return 0
        alive = await backends.redis_client().mget(
            [backends.key("viewer", pk) for pk in candidates]
        )
        stale = [pk for pk, flag in zip(candidates, alive, strict=True) if flag is None]
    else:
        before = datetime.fromtimestamp(process_started_at, tz=UTC)
        stale = await database_sync_to_async(_stale_candidates)(local_ids, before)
    if not stale:
        return 0
    closed = await database_sync_to_async(_close_many)(stale)
    if closed:
        logger.info("closed %d stale viewer rows", closed)
    return closed
