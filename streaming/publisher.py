"""The one function through which the runner publishes debate events.

``publish_event`` validates the event, coalesces tokens, gives each event the next seq of its
debate through the event log (atomic in Redis), and publishes the event's pre-encoded JSON
text once to the channel-layer group ``debate.<id>`` as
``{"type": "debate.event", "debate", "seq", "text", "ts"}``; each process's hub (streaming.fanout)
writes that text to its local viewers.

Coalescing (TOKEN_FLUSH_INTERVAL_MS, 0 disables): tokens of one (agent, turn) are buffered and
merged into one TOKEN_RECEIVED whose ``token`` is their concatenation, flushed by a timer after
the interval, and always before any other event or a token of another turn, so order holds and
ARGUMENT_COMPLETE.content still equals what the tokens spelled. The merged event's timestamp is
taken when it is created (at the flush). Per debate, emits are serialised by a lock so seq order
equals publish order.

After a debate's final STATUS_UPDATE its whole event log is archived in the database
(streaming.archive), so a replay after the log's TTL has the live seqs and texts.
"""

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field

from channels.layers import get_channel_layer
from django.conf import settings

from streaming import metrics, protocol
from streaming.archive import archive_debate_log
from streaming.eventlog import get_event_log

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


@dataclass
class _DebateStream:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tokens: list[str] = field(default_factory=list)
    agent: str | None = None
    turn: int | None = None
    extra: dict = field(default_factory=dict)
    timer: asyncio.Task | None = None
    started_at: float | None = None
    first_token_seen: bool = False


_streams: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _DebateStream]]" = (
    weakref.WeakKeyDictionary()
)


def _stream(debate_id: str) -> _DebateStream:
    per_loop = _streams.setdefault(asyncio.get_running_loop(), {})
    stream = per_loop.get(debate_id)
    if stream is None:
        stream = per_loop[debate_id] = _DebateStream()
    return stream


def _flush_interval_s() -> float:
    return max(float(settings.TOKEN_FLUSH_INTERVAL_MS), 0.0) / 1000.0


async def _emit(debate_id: str, action_type: str, fields: dict) -> dict:
    payload = protocol.event_payload(action_type, debate_id, fields)
    timestamp = protocol.now_iso()
    head, tail = protocol.event_text_parts(action_type, payload, timestamp)
    seq, text = await get_event_log().append(debate_id, head, tail)
    await get_channel_layer().group_send(
        protocol.group_name(debate_id),
        {"type": "debate.event", "debate": debate_id, "seq": seq, "text": text, "ts": time.time()},
    )
    return protocol.action(action_type, {**payload, "seq": seq}, timestamp)


async def _flush_locked(debate_id: str, stream: _DebateStream) -> dict | None:
    if stream.timer is not None and stream.timer is not asyncio.current_task():
        stream.timer.cancel()
    stream.timer = None
    if not stream.tokens:
        return None
    fields = {
        **stream.extra,
        "agent": stream.agent,
        "token": "".join(stream.tokens),
        "turn": stream.turn,
    }
    stream.tokens, stream.agent, stream.turn, stream.extra = [], None, None, {}
    return await _emit(debate_id, protocol.TOKEN_RECEIVED, fields)


async def _flush_later(debate_id: str, stream: _DebateStream, delay: float) -> None:
    await asyncio.sleep(delay)
    async with stream.lock:
        if stream.timer is asyncio.current_task():
            try:
                await _flush_locked(debate_id, stream)
            except Exception:
                logger.exception("token flush of debate %s failed", debate_id)


def _observe_first_token(stream: _DebateStream) -> None:
    if not stream.first_token_seen and stream.started_at is not None:
        metrics.TIME_TO_FIRST_TOKEN.observe(time.monotonic() - stream.started_at)
    stream.first_token_seen = True


async def publish_event(debate_id, action_type: str, payload: dict) -> dict:
    """Publish one debate event; return the action (a buffered token's seq is None)."""
    key = str(debate_id)
    action_type = protocol.normalise_type(action_type)
    protocol.event_payload(action_type, key, payload)  # refuse malformed events early
    stream = _stream(key)
    interval = _flush_interval_s()
    async with stream.lock:
        if action_type == protocol.TOKEN_RECEIVED:
            _observe_first_token(stream)
            if interval <= 0:
                return await _emit(key, action_type, payload)
            if stream.tokens and (stream.agent, stream.turn) != (
                payload["agent"],
                payload["turn"],
            ):
                await _flush_locked(key, stream)
            if not stream.tokens:
                stream.agent, stream.turn = payload["agent"], payload["turn"]
                stream.extra = {
                    k: v for k, v in payload.items() if k not in ("agent", "token", "turn")
                }
            stream.tokens.append(str(payload["token"]))
            if stream.timer is None:
                stream.timer = asyncio.create_task(_flush_later(key, stream, interval))
            return protocol.action(
                action_type, {**protocol.event_payload(action_type, key, payload), "seq": None}
            )
        await _flush_locked(key, stream)
        if action_type == protocol.STATUS_UPDATE and payload["status"] == "running":
            stream.started_at, stream.first_token_seen = time.monotonic(), False
        result = await _emit(key, action_type, payload)
        final = action_type == protocol.STATUS_UPDATE and payload["status"] in FINAL_STATUSES
        if final:
            _streams.get(asyncio.get_running_loop(), {}).pop(key, None)
    if final:
        # One DB write per debate: replay after the log's TTL keeps the live seqs.
        await archive_debate_log(key)
    return result


async def flush(debate_id) -> None:
    """Publish any buffered tokens of the debate now."""
    stream = _stream(str(debate_id))
    async with stream.lock:
        await _flush_locked(str(debate_id), stream)
