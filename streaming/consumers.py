"""The debate WebSocket consumer: checks, catch-up from the event log, then live events.

Connect order: accept; rate limit (4029); Origin (4003); token (4001: signature, type, expiry,
checked without the database); debate (4004) and the token's user (4001) looked up with the
viewer row in one batched database call (streaming.ledger); the hub subscription
(live events are buffered from here on), ``DEBATE/CONNECTED``, the catch-up, the buffered live
events with seq above the last one sent, and live events. The catch-up reads one of two
sources: the event log (every event after ``?lastSeq=N``, or from seq 1; a pending or running
debate's log is the whole truth, read without the database), or, for a finished debate whose
log expired, its archive (streaming.archive: the live seqs, or a synthesis with
``CONNECTED.reset`` set for a resuming client). An unexpected failure closes 4500 with a logged
trace, a service that is down (Redis, the database) 4503 with a one-line warning, unless the
client has already left (no error: nobody to tell). An invalid ``lastSeq``
counts as absent (replay from seq 1).

Replay (``?replay=1&speed=…&at=…``, streaming.replay): on a finished debate the same catch-up
is sent on the schedule of its events' timestamps by a task of the socket (so PINGs and the
disconnect are handled meanwhile), then the socket goes live as usual; a bad replay query
closes 4400 before any row is written. A share-link socket (``?share=``) is read-only: it never
gets a user, and the ledger lets it open its link's debate only.

Consumers take no channel of their own (no channel-layer subscription per socket): live events
come from the process's hub, and operator commands through the process's control channel
(streaming.control), which the hub routes to the socket.
"""

import asyncio
import contextlib
import logging
import sys
import time
import uuid

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from debates.models import Debate
from streaming import metrics, moderation, presence, protocol
from streaming.archive import archive_debate, archive_read
from streaming.auth import query_params
from streaming.eventlog import get_event_log
from streaming.fanout import get_hub
from streaming.ledger import get_ledger
from streaming.protocol import Close
from streaming.ratelimit import FrameBudget, allow_connection, client_ip
from streaming.replay import Replay, ReplayQueryError, parse_replay, schedule
from streaming.server import client_gone, frame_writer
from streaming.services import UNAUTHORIZED
from tradeapp.retry import service_of

logger = logging.getLogger(__name__)

# Handlers that skip Channels' per-message aclose_old_connections() (a thread hop each): they
# never touch the database, or only through database_sync_to_async, whose thread closes old
# connections itself.
_NO_DB_HANDLERS = frozenset({"websocket.connect", "websocket.receive", "websocket.disconnect"})
# No channel layer alias is configured under this name: get_channel_layer() gives None, so a
# socket costs no channel (with the Redis pub/sub layer, one SUBSCRIBE each).
NO_CHANNEL_LAYER = "no-channel-layer-per-socket"


def origin_allowed(scope) -> bool:
    """True when the handshake's Origin is in WS_ALLOWED_ORIGINS (missing or "null": False)."""
    origins = [v for k, v in scope.get("headers", []) if k.lower() == b"origin"]
    if len(origins) != 1:
        return False
    origin = origins[0].decode("latin-1").strip().rstrip("/").lower()
    if not origin or origin == "null":
        return False
    allowed = {o.strip().rstrip("/").lower() for o in settings.WS_ALLOWED_ORIGINS}
    return origin in allowed


def _parse_debate_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


def _parse_last_seq(raw: str | None) -> int | None:
    if raw is None or not raw.isdigit() or len(raw) > 12:
        return None
    return int(raw)


class DebateConsumer(AsyncJsonWebsocketConsumer):
    """One viewer of one debate at /ws/debate/<id>/."""

    channel_layer_alias = NO_CHANNEL_LAYER

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.debate_id: str | None = None
        self.viewer_id: int | None = None
        self.live = False
        self.closed = False
        self.last_sent = 0
        self.buffer: list[tuple[int, str]] = []
        self.votes_sent = 0  # version of the last DEBATE/VOTES sent (0: none, no votes yet)
        self.bad_frames = 0  # refused frames: bad, or over the socket's rate
        self.frame_budget = FrameBudget()
        self._joined = False
        self._counted = False
        self._expiry: asyncio.TimerHandle | None = None
        self._cleaned = False
        self._write_frame = None
        self.read_only = False  # a share link's socket: it watches, never acts
        self._replay_task: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        """Run the consumer; clean up however it ends (daphne may cancel it on SIGTERM)."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._cleanup()

    async def dispatch(self, message):
        """Called for every message; skips the DB-connection cleanup for DB-free handlers."""
        if message["type"] in _NO_DB_HANDLERS:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    # --- connect -----------------------------------------------------------------------------

    async def connect(self):
        """Called when the handshake arrives: accept, check, then stream."""
        await self.accept()
        try:
            await self._open()
        except Exception as exc:
            if client_gone(self.base_send, exc):
                # The client left while its socket was being set up: nobody to tell, and the
                # failure (whatever its set-up was awaiting) is no error of the server's.
                logger.info("a client left during socket set-up", exc_info=True)
                self.closed = True
                return
            failure = sys.exc_info()[1]
            if service_of(failure) is not None:
                # Redis or the database is down: a typed answer the client retries, no trace.
                logger.warning(
                    "debate socket setup failed: the %s is unavailable (%s)",
                    service_of(failure),
                    type(failure).__name__,
                )
                await self.refuse(Close.UNAVAILABLE)
                return
            logger.exception("debate socket setup failed")
            await self.refuse(Close.INTERNAL)

    async def _open(self) -> None:
        ip = client_ip(self.scope)
        if not await allow_connection(ip or "unknown"):
            return await self.refuse(Close.RATE_LIMITED)
        if not origin_allowed(self.scope):
            return await self.refuse(Close.ORIGIN_NOT_ALLOWED)
        auth = self.scope.get("auth")
        if auth is None or not auth.ok:
            return await self.refuse(Close.UNAUTHORIZED)
        raw_id = self.scope.get("url_route", {}).get("kwargs", {}).get("debate_id", "")
        debate_id = _parse_debate_id(raw_id)
        if debate_id is None:
            return await self.refuse(Close.NOT_FOUND)
        params = query_params(self.scope)
        try:
            replay = parse_replay(params)
        except ReplayQueryError:
            reason, message = protocol.INVALID_REPLAY
            return await self.refuse(Close.BAD_FRAME, message, reason)
        self.read_only = auth.share_hash is not None
        viewer = await get_ledger().open(
            debate_id=debate_id, client_ip=ip, token=auth.token, share_hash=auth.share_hash
        )
        if viewer == UNAUTHORIZED:  # the token's user is gone or inactive
            return await self.refuse(Close.UNAUTHORIZED)
        if viewer is None:
            return await self.refuse(Close.NOT_FOUND)
        if viewer.user is not None:
            self.scope["user"] = viewer.user
        debate = viewer.debate
        self.debate_id = str(debate.id)
        self.viewer_id = viewer.pk
        metrics.ACTIVE_CONNECTIONS.inc()
        self._counted = True
        # No liveness key yet: the hub's next tick sets it long before the stale-viewer sweep
        # could look at this row (see streaming.services).
        self._schedule_expiry(auth.expires_at)

        last_seq = _parse_last_seq(params.get("lastSeq"))
        if last_seq is not None:
            metrics.RECONNECTIONS.inc()
        self.last_sent = last_seq or 0

        # The seam: subscribe (live events buffer from now) BEFORE reading the log.
        await get_hub().join(self.debate_id, self)
        self._joined = True
        debate, latest, events, reset = await self._catch_up(debate)
        viewers = presence.viewers_now(self.debate_id)
        if replay is not None and not debate.is_finished:
            replay = None  # nothing to replay yet: watched live
        described = replay.describe() if replay is not None else None
        await self._send_text(
            protocol.encode(
                protocol.connected(
                    self.debate_id, debate.status, latest, viewers, reset=reset, replay=described
                )
            )
        )
        if replay is not None and not replay.instant:
            self._replay_task = asyncio.get_running_loop().create_task(
                self._replay(events, replay), name=f"replay-{self.debate_id}"
            )
            return
        for seq, text in events:
            if seq > self.last_sent:
                self.last_sent = seq
                await self._send_text(text)
        await self._go_live()

    async def _catch_up(self, debate: Debate) -> tuple[Debate, int, list[tuple[int, str]], bool]:
        """The debate, its newest seq, the events after self.last_sent, and whether the client
        must reset (its lastSeq belongs to another numbering: replay from seq 1)."""
        latest, events = await get_event_log().snapshot(self.debate_id, self.last_sent)
        if latest:
            complete = self.last_sent >= latest or (events and events[0][0] == self.last_sent + 1)
            if complete:
                return await self._reset_if_ahead(debate, latest, events)
            # A log without its first events (its stream expired or was evicted apart from its
            # seq key): fall through to the database.
        if not debate.is_finished:
            return debate, 0, [], False  # pending, or running without a log: live only
        debate = await database_sync_to_async(Debate.objects.get)(pk=debate.pk)
        archived = await database_sync_to_async(archive_read)(debate_id=debate.pk)
        if archived is None:
            archived = await archive_debate(debate.pk)
        if archived is None:
            return debate, 0, [], False
        events, synthesised = archived
        if synthesised and self.last_sent:
            # A synthesis has its own numbering: a resuming client starts over from seq 1.
            self.last_sent = 0
            return debate, events[-1][0], events, True
        return await self._reset_if_ahead(
            debate, events[-1][0], [e for e in events if e[0] > self.last_sent]
        )

    async def _reset_if_ahead(self, debate, latest, events):
        if self.last_sent <= latest:
            return debate, latest, events, False
        # lastSeq beyond the newest seq: the client's numbering is not this log's (the log was
        # lost and restarted): replay all of it from seq 1 and tell the client to start over.
        self.last_sent = 0
        events = await get_event_log().read_after(self.debate_id, 0)
        if not events:
            archived = await database_sync_to_async(archive_read)(debate_id=debate.pk)
            events = archived[0] if archived else []
        return debate, latest, events, True

    async def _replay(self, events: list[tuple[int, str]], replay: Replay) -> None:
        """Send the catch-up on its schedule (streaming.replay), then go live."""
        loop = asyncio.get_running_loop()
        offsets = schedule(events, replay, float(settings.REPLAY_MAX_GAP_S))
        start = loop.time()
        try:
            for (seq, text), offset in zip(events, offsets, strict=True):
                delay = start + offset - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.closed:
                    return
                if seq > self.last_sent:
                    self.last_sent = seq
                    await self._send_text(text)
            await self._go_live()
        except Exception:
            if self.closed or client_gone(self.base_send):
                return
            logger.exception("debate replay failed")
            await self.refuse(Close.INTERNAL)

    async def _go_live(self) -> None:
        hub = get_hub()
        while True:
            while self.buffer:
                pending, self.buffer = self.buffer, []
                for seq, text in pending:
                    if seq > self.last_sent and not self.closed:
                        self.last_sent = seq
                        await self._send_text(text)
            # The debate's current vote tallies, once, after the catch-up (a latest value).
            votes = hub.votes_of(self.debate_id)
            if votes is None or votes[0] <= self.votes_sent or self.closed:
                break
            self.votes_sent = votes[0]
            await self._send_text(votes[1])
        self._write_frame = frame_writer(self.base_send)
        self.live = True  # no await since the buffer was seen empty and the tallies sent

    def _schedule_expiry(self, expires_at: float | None) -> None:
        if expires_at is None:
            return
        delay = max(expires_at - time.time(), 0.0)
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(
            delay, lambda: loop.create_task(self.refuse(Close.UNAUTHORIZED, "The token expired."))
        )

    # --- sending -----------------------------------------------------------------------------

    async def _send_text(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})
        metrics.MESSAGES_SENT.inc()

    def deliver_now(self, events: list[tuple[int, str]], joined: bytes) -> int | None:
        """The hub's fast path, without a coroutine per viewer: the usual case (open socket under
        daphne, every event new) and the cases that need no send; returns how many events were
        sent, or None when ``deliver`` must be awaited instead."""
        if self.closed:
            return 0
        if not self.live:
            self.buffer.extend(events)
            return 0
        if events[0][0] > self.last_sent and self._write_frame is not None:
            # All of them, in one write (streaming.server).
            self.last_sent = events[-1][0]
            return len(events) if self._write_frame(joined) else 0
        if events[-1][0] <= self.last_sent:
            return 0  # already sent, e.g. with the catch-up
        return None

    async def deliver(
        self, events: list[tuple[int, str]], frames: list[bytes], joined: bytes
    ) -> int:
        """Called by the hub with live events (seq, text) in seq order, their encoded frames and
        those frames joined; returns how many were sent now."""
        sent = self.deliver_now(events, joined)
        if sent is not None:
            return sent
        sent = 0
        for (seq, text), frame in zip(events, frames, strict=True):
            if seq > self.last_sent:
                self.last_sent = seq
                sent += await self._send_shared(text, frame)
        return sent

    def deliver_votes_now(self, version: int, frame: bytes) -> int | None:
        """Called by the hub with a debate's newest DEBATE/VOTES frame; returns 1 when written,
        0 when not needed (older, or not live yet: the catch-up ends with the newest), None when
        ``deliver_votes`` must be awaited."""
        if self.closed or not self.live or version <= self.votes_sent:
            return 0
        if self._write_frame is None:
            return None
        self.votes_sent = version
        return 1 if self._write_frame(frame) else 0

    async def deliver_votes(self, version: int, text: str) -> None:
        """Send DEBATE/VOTES through the ASGI send (no fast path: tests, uvicorn)."""
        if self.closed or not self.live or version <= self.votes_sent:
            return
        self.votes_sent = version
        await self._send_text(text)

    async def send_heartbeat(self, text: str, frame: bytes | None = None) -> bool:
        """Called by the hub's tick with DEBATE/PING's text (and its encoded frame)."""
        if self.closed or not self.live:
            return False
        return await self._send_shared(text, frame)

    async def _send_shared(self, text: str, frame: bytes | None) -> bool:
        # A frame shared by every viewer goes straight to daphne's socket (streaming.server).
        if frame is not None and self._write_frame is not None:
            return self._write_frame(frame)
        await self.base_send({"type": "websocket.send", "text": text})
        return True

    async def send_error(self, code: int, message: str | None = None, reason: str | None = None):
        """Send DEBATE/ERROR without closing."""
        metrics.ERRORS.labels(code=str(int(code))).inc()
        await self._send_text(protocol.encode(protocol.error(code, message, reason)))

    async def refuse(
        self, code: int, message: str | None = None, reason: str | None = None
    ) -> None:
        """Send DEBATE/ERROR then close with the code (once)."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.send_error(code, message, reason)
            await self.close(code=int(code))
        except Exception:
            logger.debug("closing an already closed socket", exc_info=True)

    # --- client frames and control messages --------------------------------------------------

    async def websocket_receive(self, message):
        """Called with each client frame: accept PING/PONG, answer anything else with ERROR."""
        if self.closed:
            return
        if not self.frame_budget.allow():
            return await self._refuse_frame(Close.TOO_MANY_FRAMES, None, "too_many_frames")
        try:
            content = protocol.decode_client_frame(message.get("text"), message.get("bytes"))
        except protocol.ClientFrameError as exc:
            return await self._refuse_frame(Close.BAD_FRAME, exc.message, exc.reason)
        if content["type"] == protocol.PING:
            await self._send_text(protocol.encode(protocol.pong()))
        elif content["type"] == protocol.CONTROL:
            await self._moderate(content)

    async def _moderate(self, content: dict) -> None:
        """A moderator's control: applied by its owner app, answered with CONTROL_RESULT."""
        if self.read_only:  # a share link watches; it never acts, whoever created it
            status, detail = 403, "A share link only watches: it cannot moderate."
        else:
            status, detail = await database_sync_to_async(moderation.apply)(
                debate_id=self.debate_id,
                user=self.scope.get("user"),
                action=content["action"],
                text=content.get("text"),
            )
        result = protocol.control_result(
            content["action"], status, detail, content.get("requestId")
        )
        await self._send_text(protocol.encode(result))

    async def _refuse_frame(self, code: int, message: str | None, reason: str) -> None:
        """Answer a refused frame with DEBATE/ERROR; past MAX_BAD_FRAMES, close 1008."""
        self.bad_frames += 1
        if self.bad_frames > protocol.MAX_BAD_FRAMES:
            await self.refuse(Close.POLICY_VIOLATION, reason=reason)
        else:
            await self.send_error(code, message, reason)

    async def operator_disconnect(
        self, code: int | None = None, message: str | None = None
    ) -> None:
        """Called by the hub when an operator disconnects this viewer (admin action: 4008), or
        when the share link it came with is revoked (4001)."""
        await self.refuse(code or Close.OPERATOR_DISCONNECT, message)

    async def disconnect(self, code):
        """Called when the socket closes."""
        await self._cleanup()

    async def _cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        self.closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        task = self._replay_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            if self._joined:
                await get_hub().leave(self.debate_id, self)
        except Exception:
            logger.warning("leaving the hub failed", exc_info=True)
        if self._counted:
            metrics.ACTIVE_CONNECTIONS.dec()
        if self.viewer_id is not None:
            try:
                await get_ledger().close(viewer_id=self.viewer_id)
            except Exception:
                logger.warning("closing viewer %s failed", self.viewer_id, exc_info=True)
