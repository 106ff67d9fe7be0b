"""Viewer rows: open on connect, close on disconnect, sweep the ones a dead process left open, and
disconnect viewers on an operator's request.

No database write happens per token: a Viewer row is written twice per connection.
Rows are written in batches (streaming.ledger): one transaction per batch of connects, one
UPDATE per batch of disconnects.
Stale rows (SIGTERM may cancel a consumer without running its disconnect): with REDIS_URL each
row names its server process (``Viewer.process``, ``tradeapp.instance.process_id``), every process
refreshes one key of its own (streaming.presence) on its hub tick, and any process
closes the open rows, older than that TTL, of processes whose key is gone, and its own open rows
that no local consumer holds. The tick's cost does not grow with the viewers: one SET, one query
for the other processes, one MGET. Without Redis (one process), open rows that are not this
process's and connected before it started are closed. Only rows older than the TTL are looked
at, so a row just written is never taken for stale.
"""

import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.tokens import Token

from debates.models import Debate
from debates.selectors import share_links_by_hash
from streaming import backends, control, presence, protocol
from streaming.auth import token_user, token_users
from streaming.models import Viewer
from streaming.selectors import live_viewers
from tradeapp.instance import process_id

logger = logging.getLogger(__name__)

STALE_PROCESSES_MAX = 1000  # per sweep; the next tick takes the rest


# viewers_open's answer for a socket whose token names no active user (it closes 4001).
UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class ViewerRequest:
    """A socket that just opened and wants a Viewer row (`token`: its validated JWT, whose user
    is looked up here, in the batch)."""

    debate_id: uuid.UUID
    client_ip: str | None
    token: Token | None = None
    share_hash: str | None = None  # a share link's token hash: it must open this debate


def _viewer(
    request: ViewerRequest, debates: dict, users: dict, shares: dict
) -> Viewer | str | None:
    share_link_id = None
    if request.share_hash is not None:
        debate_id, share_link_id = shares.get(request.share_hash, (None, None))
        if debate_id != request.debate_id:
            return UNAUTHORIZED  # revoked, unknown, or a link to another debate
    user = None
    if request.token is not None:
        user = token_user(request.token, users)
        if user is None:
            return UNAUTHORIZED
    debate = debates.get(request.debate_id)
    if debate is None:
        return None
    return Viewer(
        debate=debate,
        user=user,
        client_ip=request.client_ip,
        process=process_id(),
        share_link_id=share_link_id,
    )


def viewers_open(*, requests: Sequence[ViewerRequest]) -> list[Viewer | str | None]:
    """Record a batch of opened sockets: each its Viewer row, UNAUTHORIZED where the token's user
    is gone or inactive or the share link does not open that debate, None where the debate does
    not exist."""
    # The lookups stay outside the transaction: on SQLite a transaction that reads first
    # cannot take the write lock while another process writes (SQLITE_BUSY, no busy wait).
    debates = Debate.objects.in_bulk({request.debate_id for request in requests})
    users = token_users(request.token for request in requests if request.token is not None)
    hashes = {request.share_hash for request in requests if request.share_hash is not None}
    shares = share_links_by_hash(token_hashes=hashes) if hashes else {}
    viewers = [_viewer(request, debates, users, shares) for request in requests]
    with transaction.atomic():
        Viewer.objects.bulk_create([viewer for viewer in viewers if isinstance(viewer, Viewer)])
    return viewers


def viewers_close(*, viewer_ids: Collection[int]) -> int:
    """Mark viewers' sockets closed (idempotent); return how many were open."""
    return Viewer.objects.filter(pk__in=viewer_ids, disconnected_at__isnull=True).update(
        disconnected_at=timezone.now()
    )


def _sweepable(before):
    return live_viewers().filter(connected_at__lt=before)


def _other_processes(process: str, before) -> list[str]:
    """The processes, other than `process`, that own open rows connected before `before` ("" for
    rows written before Viewer.process existed: no process refreshes that key)."""
    return list(
        _sweepable(before)
        .exclude(process=process)
        .order_by()
        .values_list("process", flat=True)
        .distinct()[:STALE_PROCESSES_MAX]
    )


def _orphans(process: str, local_ids: set[int], before) -> list[int]:
    """Open rows of `process`, connected before `before`, that no local consumer holds."""
    rows = _sweepable(before).filter(process=process)
    return [pk for pk in rows.values_list("pk", flat=True) if pk not in local_ids]


def viewers_close_of_processes(*, processes: Collection[str], before) -> int:
    """Close the open rows of dead processes connected before `before`; return how many."""
    return _sweepable(before).filter(process__in=processes).update(disconnected_at=timezone.now())


def _not_local(local_ids: set[int], before) -> list[int]:
    return list(_sweepable(before).exclude(pk__in=local_ids).values_list("pk", flat=True)[:5000])


async def viewer_sweep_stale(
    *, process: str, local_ids: set[int], process_started_at: float
) -> int:
    """Close open Viewer rows whose process is gone (see the module doc); return how many."""
    if not backends.redis_url():
        before = datetime.fromtimestamp(process_started_at, tz=UTC)
        stale = await database_sync_to_async(_not_local)(local_ids, before)
        closed = await database_sync_to_async(viewers_close)(viewer_ids=stale) if stale else 0
    else:
        before = timezone.now() - timedelta(seconds=presence.alive_ttl_s())
        closed = 0
        others = await database_sync_to_async(_other_processes)(process, before)
        if others:
            alive = await presence.processes_alive(others)
            dead = [other for other, up in zip(others, alive, strict=True) if not up]
            if dead:
                closed += await database_sync_to_async(viewers_close_of_processes)(
                    processes=dead, before=before
                )
        orphans = await database_sync_to_async(_orphans)(process, local_ids, before)
        if orphans:
            closed += await database_sync_to_async(viewers_close)(viewer_ids=orphans)
    if closed:
        logger.info("closed %d stale viewer rows", closed)
    return closed


def viewers_disconnect(*, viewers, code: int | None = None, message: str | None = None) -> int:
    """Close the open sockets of these Viewer rows, in whichever process holds them (each gets
    DEBATE/ERROR then close 4008, or `code` with `message`); return how many were asked."""
    by_process: dict[str, list[int]] = {}
    for pk, process in viewers.filter(disconnected_at__isnull=True).values_list("pk", "process"):
        by_process.setdefault(process, []).append(pk)
    command: dict = {"type": "viewers.disconnect"}
    if code is not None:
        command.update(code=int(code), message=message)
    for process, ids in by_process.items():
        control.send_sync(process, {**command, "viewers": ids})
    count = sum(len(ids) for ids in by_process.values())
    logger.info("operator asked %d viewers to disconnect", count)
    return count


def viewers_disconnect_share_link(*, link_id: int) -> int:
    """Close the open sockets that came with this share link (revoked): 4001."""
    viewers = Viewer.objects.filter(share_link_id=link_id)
    return viewers_disconnect(
        viewers=viewers, code=protocol.Close.UNAUTHORIZED, message="The share link was revoked."
    )
