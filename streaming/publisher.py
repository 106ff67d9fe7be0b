"""The one function through which the runner publishes debate events.

``publish_event`` validates the event, coalesces tokens, gives each event the next seq of its
debate through the event log (atomic in Redis), and publishes the event's pre-encoded JSON
text once to the channel-layer group ``debate.<id>`` as
``{"type": "debate.event", "debate", "seq", "text", "ts"}``; each process's hub (streaming.fanout)
writes that text to its local viewers. ``publish_events`` sends several events in one message,
``{"type": "debate.event", "debate", "events": [[seq, text], ...], "ts"}``.

Coalescing (TOKEN_FLUSH_INTERVAL_MS, 0 disables) throttles the token frames of a debate to one
per interval: the first token of each (agent, turn), and any token arriving an interval or more
after the last token frame, is sent at once; tokens arriving sooner are buffered and merged into
one TOKEN_RECEIVED whose ``token`` is their concatenation, sent by a timer one interval after
the last token frame, and always before any other event or a token of another turn, so order
holds and ARGUMENT_COMPLETE.content still equals what the tokens spelled. The merged event's
timestamp is taken when it is created. Per debate, emits are serialised by a lock so seq order
equals publish order.

The interval widens with the audience: every frame costs each viewer's server a write, so a
large audience gets fewer, larger frames. While a debate runs, its open viewers are counted
every AUDIENCE_REFRESH_S, and the interval is
``max(TOKEN_FLUSH_INTERVAL_MS, TOKEN_FLUSH_MS_PER_1K_VIEWERS x viewers / 1000)``, at most
``max(TOKEN_FLUSH_MAX_MS, TOKEN_FLUSH_INTERVAL_MS)``: with the default 50 ms per 1,000 viewers
the audience receives at most ~20,000 token frames per second in all, whatever its size.

After a debate's final STATUS_UPDATE its whole event log is archived in the database
(streaming.archive), so a replay after the log's TTL has the live seqs and texts.
"""

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from debates.selectors import live_viewers
from streaming import metrics, protocol
from streaming.archive import archive_debate_log
from streaming.eventlog import get_event_log

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
AUDIENCE_REFRESH_S = 2.0


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
    sent_key: tuple | None = None  # (agent, turn) of the last token frame
    sent_at: float = float("-inf")  # loop time of the last token frame
    viewers: int = 0
    audience: asyncio.Task | None = None


_streams: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _DebateStream]]" = (
    weakref.WeakKeyDictionary()
)


def _stream(debate_id: str) -> _DebateStream:
    per_loop = _streams.setdefault(asyncio.get_running_loop(), {})
    stream = per_loop.get(debate_id)
    if stream is None:
        stream = per_loop[debate_id] = _DebateStream()
    return stream


def flush_interval_ms(viewers: int) -> float:
    """The token coalescing interval for an audience of `viewers` (0: no coalescing)."""
    base = max(float(settings.TOKEN_FLUSH_INTERVAL_MS), 0.0)
    if base <= 0:
        return 0.0
    wanted = float(settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS) * max(viewers, 0) / 1000.0
    return min(max(base, wanted), max(float(settings.TOKEN_FLUSH_MAX_MS), base))


def _count_viewers(debate_id: str) -> int:
    return live_viewers(debate_id=debate_id).count()


async def _follow_audience(debate_id: str, stream: _DebateStream) -> None:
    """Keep stream.viewers near the debate's open viewer count while the debate runs."""
    while _streams.get(asyncio.get_running_loop(), {}).get(debate_id) is stream:
        try:
            stream.viewers = await database_sync_to_async(_count_viewers)(debate_id)
        except Exception:
            logger.warning("counting the viewers of debate %s failed", debate_id, exc_info=True)
        await asyncio.sleep(AUDIENCE_REFRESH_S)


def _start_following(debate_id: str, stream: _DebateStream) -> None:
    stream.started_at, stream.first_token_seen = time.monotonic(), False
    _stop_following(stream)
    if flush_interval_ms(0) > 0 and float(settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS) > 0:
        stream.audience = asyncio.create_task(_follow_audience(debate_id, stream))


def _stop_following(stream: _DebateStream) -> None:
    if stream.audience is not None:
        stream.audience.cancel()
        stream.audience = None


async def _append(debate_id: str, action_type: str, fields: dict) -> tuple[int, str, dict]:
    """Log one event under the next seq: (seq, its JSON text, the action)."""
    payload = protocol.event_payload(action_type, debate_id, fields)
    timestamp = protocol.now_iso()
    head, tail = protocol.event_text_parts(action_type, payload, timestamp)
    seq, text = await get_event_log().append(debate_id, head, tail)
    return seq, text, protocol.action(action_type, {**payload, "seq": seq}, timestamp)


async def _send(debate_id: str, logged: list[tuple[int, str, dict]]) -> None:
    """One channel-layer message to every process watching the debate, for one or more events."""
    message = {"type": "debate.event", "debate": debate_id, "ts": time.time()}
    if len(logged) == 1:
        message["seq"], message["text"] = logged[0][0], logged[0][1]
    else:
        message["events"] = [[seq, text] for seq, text, _ in logged]
    await get_channel_layer().group_send(protocol.group_name(debate_id), message)


async def _emit(debate_id: str, action_type: str, fields: dict) -> dict:
    logged = await _append(debate_id, action_type, fields)
    await _send(debate_id, [logged])
    return logged[2]


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
    return await _emit_token(debate_id, stream, fields)


async def _emit_token(debate_id: str, stream: _DebateStream, fields: dict) -> dict:
    stream.sent_key = (fields["agent"], fields["turn"])
    stream.sent_at = asyncio.get_running_loop().time()
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
    action_type = protocol.normalise_type(action_type)
    if action_type != protocol.TOKEN_RECEIVED:
        return (await publish_events(debate_id, [(action_type, payload)]))[0]
    key = str(debate_id)
    protocol.event_payload(action_type, key, payload)  # refuse malformed events early
    stream = _stream(key)
    async with stream.lock:
        _observe_first_token(stream)
        return await _publish_token(key, stream, payload)


async def publish_events(debate_id, events: list[tuple[str, dict]]) -> list[dict]:
    """Publish several debate events at once, uncoalesced, and return their actions: their seqs
    are consecutive and every hub writes them to each viewer together (e.g. a debate's opening:
    `running`, the first TURN_CHANGE and the first token, so a viewer waits for one write)."""
    key = str(debate_id)
    checked = [(protocol.normalise_type(kind), payload) for kind, payload in events]
    for kind, payload in checked:
        protocol.event_payload(kind, key, payload)  # refuse malformed events before any is sent
    stream = _stream(key)
    loop = asyncio.get_running_loop()
    async with stream.lock:
        await _flush_locked(key, stream)
        logged = []
        for kind, payload in checked:
            if kind == protocol.TOKEN_RECEIVED:
                _observe_first_token(stream)
                stream.sent_key, stream.sent_at = (payload["agent"], payload["turn"]), loop.time()
            elif kind == protocol.STATUS_UPDATE and payload["status"] == "running":
                _start_following(key, stream)
            logged.append(await _append(key, kind, payload))
        await _send(key, logged)
        final = any(
            kind == protocol.STATUS_UPDATE and payload["status"] in FINAL_STATUSES
            for kind, payload in checked
        )
        if final:
            _stop_following(stream)
            _streams.get(loop, {}).pop(key, None)
    if final:
        # One DB write per debate: replay after the log's TTL keeps the live seqs.
        await archive_debate_log(key)
    return [action for _, _, action in logged]


async def _publish_token(key: str, stream: _DebateStream, payload: dict) -> dict:
    interval = flush_interval_ms(stream.viewers) / 1000.0
    if interval <= 0:
        return await _emit(key, protocol.TOKEN_RECEIVED, payload)
    token_key = (payload["agent"], payload["turn"])
    if stream.tokens and (stream.agent, stream.turn) != token_key:
        await _flush_locked(key, stream)
    now = asyncio.get_running_loop().time()
    if not stream.tokens and (stream.sent_key != token_key or now - stream.sent_at >= interval):
        # The first token of a turn, or the first after a quiet interval, goes out at once.
        return await _emit_token(key, stream, payload)
    if not stream.tokens:
        stream.agent, stream.turn = token_key
        stream.extra = {k: v for k, v in payload.items() if k not in ("agent", "token", "turn")}
    stream.tokens.append(str(payload["token"]))
    if stream.timer is None:
        delay = max(stream.sent_at + interval - now, 0.0)
        stream.timer = asyncio.create_task(_flush_later(key, stream, delay))
    return protocol.action(
        protocol.TOKEN_RECEIVED,
        {**protocol.event_payload(protocol.TOKEN_RECEIVED, key, payload), "seq": None},
    )


async def flush(debate_id) -> None:
    """Publish any buffered tokens of the debate now."""
    stream = _stream(str(debate_id))
    async with stream.lock:
        await _flush_locked(str(debate_id), stream)
