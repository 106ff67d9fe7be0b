"""The one way debate events are published: seq, event log, coalescing, channel-layer message.

``publish_events(debate_id, events, hold_s=0)`` validates the events, holds them in the debate's
outbox (the one batching mechanism), gives each event the next seq of its debate through the
event log (atomic in Redis) when the outbox goes out, and publishes the events' pre-encoded JSON
texts to the channel-layer group ``debate.<id>`` as one message: ``{"type": "debate.event",
"debate", "seq", "text", "ts"}`` for one event, ``{..., "events": [[seq, text], ...]}`` for
several (``protocol.layer_events`` reads both). Each process's hub (streaming.fanout) writes a
message to its local viewers, one write per viewer. Per debate a lock serialises publishing, so
seq order is publish order.

A debate's outbox lives on the event loop that publishes its events (the loop running the
debate); a publish from another thread or loop (a service announcing a status on commit) is
handed to that loop, so every event of a debate goes through one outbox in order.

Coalescing (TOKEN_FLUSH_INTERVAL_MS, 0 disables) sends at most one message per debate per
interval. In the outbox a token joins the token before it when of the same (agent, turn), so
ARGUMENT_COMPLETE.content still equals what the tokens spelled. The outbox goes out as one
message when the newest event must go at once, or else by a timer one interval after the last
message. At once means: the first event after a quiet interval; with a small audience also any
non-token event and the first token of each turn. ``hold_s`` holds events until the next event
that goes out, or at most that long (a debate's opening: ``running`` and the first TURN_CHANGE
go out with the first token, so each viewer waits for one write, unless the model is slow). A
final STATUS_UPDATE is never left to a timer: with a small audience it goes at once, with a
large one its publish waits for the tick and sends. An event's ``timestamp`` is the time it was
published to the outbox, i.e. created (a merged token keeps its first token's); its
``publishedAt`` is the time the outbox sent it, so a viewer can tell the coalescing wait from the
delivery.

The interval widens with the audience one server process holds: every message costs each server
process a write per local viewer, so a process with many viewers needs fewer, larger messages,
and a debate whose audience is spread over many processes does not. From a debate's ``running``
until its final status (or ``release``), the largest number of its viewers one process holds
(streaming.presence.audience_spread: no database query) is read when ``running`` is published
and then every AUDIENCE_REFRESH_S, and the interval is
``max(TOKEN_FLUSH_INTERVAL_MS, TOKEN_FLUSH_MS_PER_1K_VIEWERS x viewers / 1000)``, at most
``max(TOKEN_FLUSH_MAX_MS, TOKEN_FLUSH_INTERVAL_MS)``: with the default 50 ms per 1,000 viewers
each process writes at most ~20,000 frames per second for a debate, whatever its size. Once
widened past TOKEN_FLUSH_INTERVAL_MS, every event waits for the next tick, so each viewer gets
one write per interval. An event's wait in the outbox is part of its production -> receipt
latency (up to one interval).

After a debate's final STATUS_UPDATE it is archived (streaming.archive), so a replay after the
log's TTL has the live seqs and texts.
"""

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

from channels.layers import get_channel_layer
from django.conf import settings

from streaming import presence, protocol
from streaming.archive import archive_debate
from streaming.eventlog import get_event_log
from tradeapp.retry import ServiceUnavailable, retry_async

logger = logging.getLogger(__name__)

AUDIENCE_REFRESH_S = 2.0
# A final status that could not go out (a long Redis outage) is tried again this often.
RESEND_INTERVAL_S = 2.0

Event = tuple[str, dict]
Held = tuple[str, dict, float]  # an event and its creation time (epoch seconds)


@dataclass
class _DebateStream:
    loop: asyncio.AbstractEventLoop
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    outbox: list[Held] = field(default_factory=list)  # held events, tokens merged
    timer: asyncio.Task | None = None
    timer_due: float = float("inf")  # loop time the timer flushes at
    sent_key: tuple | None = None  # (agent, turn) of the last token sent
    sent_at: float = float("-inf")  # loop time of the last message sent
    viewers: int = 0  # the most viewers one server process holds of this debate
    audience: asyncio.Task | None = None
    logged: list = field(default_factory=list)  # logged, not yet sent: (seq, text, action)
    logged_created: float = float("inf")  # creation time of the oldest of them
    last_seq: int = 0  # the newest seq this process logged (the floor after a Redis restart)
    resend: asyncio.Task | None = None  # re-sending a final status that could not go out


_streams: dict[str, _DebateStream] = {}
_streams_lock = threading.Lock()


def _stream(debate_id: str) -> _DebateStream:
    """The debate's stream: its own loop's, or a new one on the running loop."""
    loop = asyncio.get_running_loop()
    with _streams_lock:
        stream = _streams.get(debate_id)
        if (
            stream is None
            or stream.loop.is_closed()
            or (stream.loop is not loop and not stream.loop.is_running())
        ):
            stream = _streams[debate_id] = _DebateStream(loop=loop)
        return stream


def flush_interval_ms(viewers: int) -> float:
    """The token coalescing interval for an audience of `viewers` (0: no coalescing)."""
    base = max(float(settings.TOKEN_FLUSH_INTERVAL_MS), 0.0)
    if base <= 0:
        return 0.0
    wanted = float(settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS) * max(viewers, 0) / 1000.0
    return min(max(base, wanted), max(float(settings.TOKEN_FLUSH_MAX_MS), base))


def _follows_audience() -> bool:
    return flush_interval_ms(0) > 0 and float(settings.TOKEN_FLUSH_MS_PER_1K_VIEWERS) > 0


async def _count_audience(debate_id: str, stream: _DebateStream) -> None:
    try:
        _audience, stream.viewers = await presence.audience_spread(debate_id)
    except Exception:
        logger.warning("reading the audience of debate %s failed", debate_id, exc_info=True)


async def _follow_audience(debate_id: str, stream: _DebateStream) -> None:
    """Keep stream.viewers near the debate's audience while the debate runs."""
    while _streams.get(debate_id) is stream:
        await asyncio.sleep(AUDIENCE_REFRESH_S)
        await _count_audience(debate_id, stream)


async def _start_following(debate_id: str, stream: _DebateStream) -> None:
    # Counted before its opening is sent, so a large audience's first events already go out
    # at the interval it needs, not one message each.
    if stream.audience is None and _follows_audience():
        await _count_audience(debate_id, stream)
        stream.audience = asyncio.create_task(_follow_audience(debate_id, stream))


def _stop_following(stream: _DebateStream) -> None:
    if stream.audience is not None:
        stream.audience.cancel()
        stream.audience = None


def release(debate_id) -> None:
    """Stop following the debate's audience (a run that ends without a final status)."""
    stream = _streams.get(str(debate_id))
    if stream is not None and stream.loop is _running_loop():
        _stop_following(stream)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _append(
    debate_id: str, action_type: str, fields: dict, created: float, published_at: str, floor: int
) -> tuple[int, str, dict]:
    """Log one event under the next seq: (seq, its JSON text, the action)."""
    payload = protocol.event_payload(action_type, debate_id, fields)
    timestamp = protocol.iso_at(created)
    head, tail = protocol.event_text_parts(action_type, payload, timestamp, published_at)
    seq, text = await get_event_log().append(debate_id, head, tail, floor=floor)
    action = protocol.action(action_type, {**payload, "seq": seq}, timestamp)
    return seq, text, {**action, "publishedAt": published_at}


async def _send(debate_id: str, logged: list[tuple[int, str, dict]], created: float) -> None:
    """One channel-layer message to every process watching the debate, for one or more events
    (``created``: the oldest one's creation time, for the delivery-latency metric)."""
    message = {"type": "debate.event", "debate": debate_id, "ts": time.time(), "created": created}
    if len(logged) == 1:
        message["seq"], message["text"] = logged[0][0], logged[0][1]
    else:
        message["events"] = [[seq, text] for seq, text, _ in logged]
    await get_channel_layer().group_send(protocol.group_name(debate_id), message)


def _hold(stream: _DebateStream, action_type: str, payload: dict, created: float) -> None:
    """Add an event to the outbox; a token joins the token before it if of the same turn (and
    the merged token keeps the first one's creation time)."""
    if action_type == protocol.TOKEN_RECEIVED:
        if stream.outbox:
            last_type, last, _created = stream.outbox[-1]
            if last_type == action_type and (last["agent"], last["turn"]) == (
                payload["agent"],
                payload["turn"],
            ):
                last["token"] += str(payload["token"])
                return
        payload = {**payload, "token": str(payload["token"])}
    stream.outbox.append((action_type, payload, created))


async def _flush_locked(debate_id: str, stream: _DebateStream) -> list[dict]:
    """Send the outbox now as one message (consecutive seqs); return the actions sent."""
    if stream.timer is not None and stream.timer is not asyncio.current_task():
        stream.timer.cancel()
    stream.timer, stream.timer_due = None, float("inf")
    if not stream.outbox and not stream.logged:
        return []
    # Each step is retried through a Redis outage (tradeapp.retry); an event leaves the outbox
    # only once logged, and the logged ones are sent (again) until the publish succeeds, so an
    # outage delays events but never loses or renumbers one.
    published_at = protocol.now_iso()
    if stream.logged:
        # Their publish failed: Redis went away, and may have come back empty. Put them back in
        # the log first, under their seqs, so a viewer that misses this message (its process is
        # still resubscribing) finds them there, before the events that follow.
        held = [(seq, text) for seq, text, _action in stream.logged]
        await retry_async(
            lambda: get_event_log().restore(debate_id, held),
            what=f"restoring events of debate {debate_id}",
        )
    while stream.outbox:
        action_type, payload, created = stream.outbox[0]
        logged = await retry_async(
            lambda a=action_type, p=payload, c=created: _append(
                debate_id, a, p, c, published_at, stream.last_seq
            ),
            what=f"logging an event of debate {debate_id}",
        )
        stream.outbox.pop(0)
        stream.last_seq = max(stream.last_seq, logged[0])
        stream.logged.append(logged)
        stream.logged_created = min(stream.logged_created, created)
        if action_type == protocol.TOKEN_RECEIVED:
            stream.sent_key = (payload["agent"], payload["turn"])
    logged, created = stream.logged, stream.logged_created
    await retry_async(
        lambda: _send(debate_id, logged, created),
        what=f"publishing events of debate {debate_id}",
    )
    stream.logged, stream.logged_created = [], float("inf")
    stream.sent_at = asyncio.get_running_loop().time()
    return [action for _, _, action in logged]


async def _flush_later(debate_id: str, stream: _DebateStream, delay: float) -> None:
    await asyncio.sleep(delay)
    async with stream.lock:
        if stream.timer is asyncio.current_task():
            try:
                await _flush_locked(debate_id, stream)
            except Exception:
                logger.exception("event flush of debate %s failed", debate_id)


def _flush_at(debate_id: str, stream: _DebateStream, due: float) -> None:
    """Make sure the outbox goes out by loop time `due` at the latest."""
    if stream.timer is not None and stream.timer_due <= due:
        return
    if stream.timer is not None:
        stream.timer.cancel()
    delay = max(due - stream.loop.time(), 0.0)
    stream.timer = asyncio.create_task(_flush_later(debate_id, stream, delay))
    stream.timer_due = due


def _goes_out_now(stream: _DebateStream, action_type: str, payload: dict, now: float) -> bool:
    """Whether this event (with anything held) is sent at once rather than at the next tick."""
    base = flush_interval_ms(0) / 1000.0
    interval = flush_interval_ms(stream.viewers) / 1000.0
    if interval <= 0 or now - stream.sent_at >= interval:
        return True  # no coalescing, or the first event after a quiet interval
    if action_type != protocol.TOKEN_RECEIVED:
        # A small audience gets every other event at once; a large one (interval widened past
        # the base) gets them with the next tick, so each viewer gets one write per interval.
        return interval <= base
    # The first token of a turn opens its text at once, unless the audience is large.
    return interval <= base and stream.sent_key != (payload["agent"], payload["turn"])


def _is_final(action_type: str, payload: dict) -> bool:
    return action_type == protocol.STATUS_UPDATE and payload["status"] in protocol.FINAL_STATUSES


async def _publish_locked(
    key: str, stream: _DebateStream, events, hold_s: float, created: float
) -> list[dict]:
    for action_type, payload in events:
        if action_type == protocol.STATUS_UPDATE and payload["status"] == "running":
            await _start_following(key, stream)
        _hold(stream, action_type, payload, created)
    action_type, payload = events[-1]
    now = stream.loop.time()
    final = _is_final(action_type, payload)
    if hold_s > 0 and not final:
        _flush_at(key, stream, now + hold_s)
        return []
    if _goes_out_now(stream, action_type, payload, now):
        return await _flush_locked(key, stream)
    delay = max(stream.sent_at + flush_interval_ms(stream.viewers) / 1000.0 - now, 0.0)
    if final:
        # The last message waits for the tick too (else it is a second fan-out right behind
        # the previous one), and the debate is archived only once it is sent.
        await asyncio.sleep(delay)
        return await _flush_locked(key, stream)
    _flush_at(key, stream, now + delay)
    return []


async def publish_event(debate_id, action_type: str, payload: dict) -> dict:
    """Publish one debate event; return its action (seq None while it is held)."""
    return (await publish_events(debate_id, [(action_type, payload)]))[-1]


async def publish_events(debate_id, events: list[Event], *, hold_s: float = 0.0) -> list[dict]:
    """Publish debate events in order; events published together go out together, in one
    message. ``hold_s`` > 0 holds them for the next event that goes out, at most that long.
    Returns the actions this call sent (events held before included, merged tokens as one),
    or, when it sent nothing, these events with seq None."""
    return await _publish(str(debate_id), events, hold_s, time.time())


async def _publish(key: str, events: list[Event], hold_s: float, created: float) -> list[dict]:
    checked = [(protocol.normalise_type(kind), payload) for kind, payload in events]
    for kind, payload in checked:
        protocol.event_payload(kind, key, payload)  # refuse malformed events before any is sent
    stream = _stream(key)
    if stream.loop is not asyncio.get_running_loop():
        # Another loop runs this debate: publish there, through its outbox, in order (the events
        # keep the time they were created here).
        future = asyncio.run_coroutine_threadsafe(
            _publish(key, checked, hold_s, created), stream.loop
        )
        return await asyncio.wrap_future(future)
    final = any(_is_final(kind, payload) for kind, payload in checked)
    async with stream.lock:
        try:
            sent = await _publish_locked(key, stream, checked, hold_s, created)
        except ServiceUnavailable:
            if not final:
                raise
            # The final status must reach every viewer: it stays in the outbox and is re-sent
            # until it goes out (a viewer left on "running" would wait forever).
            logger.warning("the final status of debate %s is re-sent until it goes out", key)
            _resend_later(key, stream)
            sent, final = [], False
        if final:
            _end_stream(key, stream)
    if final:
        # One DB write per debate: replay after the log's TTL keeps the live seqs.
        await archive_debate(key)
    if sent:
        return sent
    timestamp = protocol.iso_at(created)
    return [
        protocol.action(
            kind, {**protocol.event_payload(kind, key, payload), "seq": None}, timestamp
        )
        for kind, payload in checked
    ]


async def publish_notice(debate_id, message: dict) -> bool:
    """Send a notice without a seq (e.g. DEBATE/RECOVERING) to every live viewer of the debate,
    in every process, once (not logged: it is never replayed); False when it could not go out."""
    text = protocol.encode(message)
    notice = {"type": "debate.notice", "debate": str(debate_id), "text": text}
    try:
        await get_channel_layer().group_send(protocol.group_name(debate_id), notice)
    except Exception:  # noqa: BLE001 - a notice is best effort: the events that follow are not
        logger.warning("a notice to the viewers of debate %s could not go out", debate_id)
        return False
    return True


def _end_stream(key: str, stream: _DebateStream) -> None:
    """The debate's final status went out: forget its outbox."""
    _stop_following(stream)
    with _streams_lock:
        if _streams.get(key) is stream:
            del _streams[key]


def _resend_later(key: str, stream: _DebateStream) -> None:
    if stream.resend is None or stream.resend.done():
        stream.resend = asyncio.create_task(_resend_final(key, stream))


async def _resend_final(key: str, stream: _DebateStream) -> None:
    """Send what the outbox holds, the final status last, until it goes out; then archive."""
    while True:
        await asyncio.sleep(RESEND_INTERVAL_S)
        async with stream.lock:
            try:
                await _flush_locked(key, stream)
            except ServiceUnavailable:
                continue
            except Exception:
                logger.exception("re-sending the final status of debate %s failed", key)
                continue
            _end_stream(key, stream)
        logger.info("the final status of debate %s went out", key)
        await archive_debate(key)
        return


async def flush(debate_id) -> None:
    """Publish any held events of the debate now."""
    stream = _stream(str(debate_id))
    async with stream.lock:
        await _flush_locked(str(debate_id), stream)
