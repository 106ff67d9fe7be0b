"""Viewer rows: open on connect, close on disconnect, and sweep the ones a dead process left open.

No database write happens per token: a Viewer row is written twice per connection.
Rows are written in batches (streaming.ledger): one transaction per batch of connects, one
UPDATE per batch of disconnects.
Stale rows (SIGTERM may cancel a consumer without running its disconnect): with REDIS_URL every
process refreshes a key per open viewer (TTL 3 x WS_PING_INTERVAL_S) on its hub tick, and any
process closes open rows older than that TTL whose key is gone. Without Redis (one process),
open rows that are not this process's and connected before it started are closed.
A new viewer needs no key of its own at connect: it joins its hub right after its row is
written, the next tick (at most one interval later) sets its key, and the sweep only looks at
rows older than three intervals.
"""

import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from debates.models import Debate, Viewer
from debates.selectors import live_viewer_counts, live_viewers
from streaming import backends

logger = logging.getLogger(__name__)

KEEPALIVE_CHUNK = 1000


def _alive_ttl_s() -> int:
    return max(int(3 * float(settings.WS_PING_INTERVAL_S)), 5)


@dataclass(frozen=True)
class ViewerRequest:
    """A socket that just opened and wants a Viewer row."""

    debate_id: uuid.UUID
    user: object
    channel_name: str
    client_ip: str | None


def viewers_open(
    *, requests: Sequence[ViewerRequest], count_debate_ids: Collection[uuid.UUID] = ()
) -> tuple[list[Viewer | None], dict[uuid.UUID, int]]:
    """Record a batch of opened sockets (None where the debate does not exist) and count the
    live viewers of count_debate_ids (those that exist) after it."""
    # The lookup stays outside the transaction: on SQLite a transaction that reads first
    # cannot take the write lock while another process writes (SQLITE_BUSY, no busy wait).
    debates = Debate.objects.in_bulk({request.debate_id for request in requests})
    viewers = [
        Viewer(
            debate=debates[request.debate_id],
            user=request.user if getattr(request.user, "is_authenticated", False) else None,
            channel_name=request.channel_name,
            client_ip=request.client_ip,
        )
        if request.debate_id in debates
        else None
        for request in requests
    ]
    counted = [debate_id for debate_id in count_debate_ids if debate_id in debates]
    with transaction.atomic():
        Viewer.objects.bulk_create([viewer for viewer in viewers if viewer is not None])
        counts = live_viewer_counts(debate_ids=counted) if counted else {}
    return viewers, counts


def viewers_close(*, viewer_ids: Collection[int]) -> int:
    """Mark viewers' sockets closed (idempotent); return how many were open."""
    return Viewer.objects.filter(pk__in=viewer_ids, disconnected_at__isnull=True).update(
        disconnected_at=timezone.now()
    )


async def viewers_keepalive(viewer_ids) -> None:
    """Refresh the liveness keys of this process's open viewers (Redis only)."""
    if not backends.redis_url() or not viewer_ids:
        return
    ttl = _alive_ttl_s()
    ids = list(viewer_ids)
    # In chunks: building one pipeline for ~10,000 viewers would hold the event loop.
    for start in range(0, len(ids), KEEPALIVE_CHUNK):
        async with backends.redis_client().pipeline(transaction=False) as pipe:
            for viewer_id in ids[start : start + KEEPALIVE_CHUNK]:
                pipe.set(backends.key("viewer", viewer_id), 1, ex=ttl)
            await pipe.execute()


def _stale_candidates(local_ids: set[int], before) -> list[int]:
    return list(
        live_viewers()
        .filter(connected_at__lt=before)
        .exclude(pk__in=local_ids)
        .values_list("pk", flat=True)[:5000]
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
    closed = await database_sync_to_async(viewers_close)(viewer_ids=stale)
    if closed:
        logger.info("closed %d stale viewer rows", closed)
    return closed
