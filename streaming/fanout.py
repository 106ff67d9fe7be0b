"""The per-process fan-out hub: one channel-layer subscription per debate, local delivery.

Plain Channels sends every event through the channel layer once per viewer and runs
``aclose_old_connections`` (a thread hop) before each handler (DESIGN §4). Instead, each
process has one hub per event loop with one channel of its own; the hub joins the group
``debate.<id>`` while at least one local viewer watches that debate, receives each event once
(its JSON text already encoded by the publisher), and writes the same text to each local
consumer's ASGI send; under daphne the frame is encoded once and written straight to each socket
(streaming.server). Events that arrive while a fan-out runs (or are published together, see
``publisher.publish_events``) go out in the next fan-out as one write per viewer. Consumers stay
``AsyncJsonWebsocketConsumer``s: they register with the hub on connect and leave it on
disconnect.

Exactness: the hub remembers the newest seq it delivered per debate. A received event whose
seq skips ahead (the pub/sub layer drops messages while it reconnects to Redis) makes the hub
read the missing events from the event log first; a periodic tick also compares with the log's
newest seq, and so does a lighter pass every REPAIR_INTERVAL_S (2 s) for debates that went
quiet, so a lost last event (a final status) is repaired within seconds. Consumers drop
anything with seq <= the last seq they sent.

The same tick sends ``DEBATE/PING`` to the live local viewers of every debate that had no event
within the interval (any frame proves the link is alive; a large audience's debate is not given
an extra write per viewer), refreshes this process's liveness key and audience counts
(streaming.presence) and sweeps stale viewer rows (streaming.services).

Vote tallies (``debate.votes`` messages, streaming.tallies) are a latest value, not events: the
hub keeps the newest version per debate (read from the database when the process starts
watching the debate, then from messages), writes it to the local viewers at most once per
VOTES_TALLY_INTERVAL_MS whatever the number of processes sending, and gives it to each socket
right after its catch-up.

The hub also moves the process's audience count as consumers join and leave, and closes the
sockets an operator disconnects (the ``viewers.disconnect`` command of streaming.control).
"""

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from streaming import control, metrics, presence, protocol, services, tallies
from streaming.backends import PerLoop
from streaming.eventlog import get_event_log
from streaming.server import encode_text_frame
from tradeapp.instance import process_id

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
# How often debates that went quiet are checked for events lost from pub/sub.
REPAIR_INTERVAL_S = 2.0
# How long a repair waits for events the log lost (an empty Redis) before skipping them.
HOLE_GRACE_S = 2.0
# A long fan-out gives the loop back this often, so the debate, pings and handshakes go on.
YIELD_EVERY = 50
PROCESS_STARTED_AT = time.time()


def _epoch_of(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class _Debate:
    """The hub's state for one debate watched from this process."""

    def __init__(self) -> None:
        self.members: set = set()
        self.subscribed = False
        self.last_seq = 0
        self.lock = asyncio.Lock()  # subscribe/unsubscribe transitions
        self.deliver_lock = asyncio.Lock()  # one fan-out at a time, in seq order
        self.pending: list[dict] = []  # received events waiting for the fan-out
        self.fanned_out_at = float("-inf")  # loop time of the last fan-out
        self.drainer: asyncio.Task | None = None
        self.votes_version = 0  # the newest DEBATE/VOTES received (version 0: no votes yet)
        self.votes_text: str | None = None
        self.votes_sent_at = float("-inf")  # loop time of the last votes fan-out
        self.votes_written = 0  # the version of the last votes fan-out
        self.votes_timer: asyncio.TimerHandle | None = None
        self.votes_task: asyncio.Task | None = None
        self.hole_since: float | None = None  # loop time a repair first found the log holed


class Hub:
    """Per-process, per-event-loop fan-out of debate events to local consumers."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.process = process_id()
        self.debates: dict[str, _Debate] = {}
        self._probes: dict[str, asyncio.Future] = {}
        self._tasks: list[asyncio.Task] = []
        self._start_lock = asyncio.Lock()
        self._closing: set[asyncio.Task] = set()  # kept until done: disconnects, notices
        self._sending: set[asyncio.Task] = set()  # vote tallies being written
        self.started_at = PROCESS_STARTED_AT

    # --- lifecycle ---------------------------------------------------------------------------

    async def _ensure_started(self) -> None:
        if self.channel is not None:
            return
        async with self._start_lock:
            if self.channel is None:
                channel = await self.layer.new_channel("hub.")
                await control.ensure_listening()
                self._tasks = [
                    asyncio.create_task(self._receive_loop(channel), name="hub-receive"),
                    asyncio.create_task(self._tick_loop(), name="hub-tick"),
                    asyncio.create_task(self._repair_loop(), name="hub-repair"),
                ]
                self.channel = channel

    async def close(self) -> None:
        """Stop the hub's tasks (tests and shutdown)."""
        drainers = [s.drainer for s in self.debates.values() if s.drainer is not None]
        for state in self.debates.values():
            self._forget_votes(state)
        for task in list(self._sending):
            task.cancel()
        for task in [*self._tasks, *drainers]:
            task.cancel()
        for task in [*self._tasks, *drainers]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self.channel = None

    # --- membership --------------------------------------------------------------------------

    async def join(self, debate_id: str, consumer) -> None:
        """Add a local consumer; returns once this process receives the debate's events."""
        await self._ensure_started()
        while True:
            state = self.debates.setdefault(debate_id, _Debate())
            if state.subscribed and not state.lock.locked():
                # The usual case, taken without the lock: in a storm, thousands of joiners would
                # otherwise pass the lock one per loop iteration (a convoy of seconds).
                if consumer not in state.members:
                    presence.joined(debate_id)
                state.members.add(consumer)
                return
            if await self._join_locked(debate_id, state, consumer):
                return

    async def _join_locked(self, debate_id: str, state: _Debate, consumer) -> bool:
        """Join under the debate's lock; False when the last viewer's leave dropped this state
        while we waited (joining it would leave us unsubscribed-for and never unsubscribed)."""
        async with state.lock:
            if self.debates.get(debate_id) is not state:
                return False
            if consumer not in state.members:
                presence.joined(debate_id)
            state.members.add(consumer)
            if not state.subscribed:
                await self.layer.group_add(protocol.group_name(debate_id), self.channel)
                await self._probe(debate_id)
                state.last_seq = await get_event_log().last_seq(debate_id)
                state.subscribed = True
                state.votes_task = asyncio.create_task(self._load_votes(debate_id, state))
        return True

    async def leave(self, debate_id: str, consumer) -> None:
        """Remove a local consumer; the last one out unsubscribes the process."""
        state = self.debates.get(debate_id)
        if state is None:
            return
        async with state.lock:
            if consumer in state.members:
                state.members.discard(consumer)
                presence.left(debate_id)
            if not state.members and state.subscribed:
                state.subscribed = False
                if self.channel is not None:
                    await self.layer.group_discard(protocol.group_name(debate_id), self.channel)
            if not state.members and not state.subscribed:
                self.debates.pop(debate_id, None)
                self._forget_votes(state)

    async def _probe(self, debate_id: str) -> None:
        # SUBSCRIBE is not acknowledged by the layer: wait until our own probe comes back, so
        # the caller's later log read cannot miss an event published in between.
        nonce = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._probes[nonce] = future
        try:
            await self.layer.group_send(
                protocol.group_name(debate_id), {"type": "hub.probe", "nonce": nonce}
            )
            await asyncio.wait_for(future, PROBE_TIMEOUT_S)
        except TimeoutError:
            logger.warning("hub subscription probe for %s timed out", debate_id)
        finally:
            self._probes.pop(nonce, None)

    # --- delivery ----------------------------------------------------------------------------

    async def _receive_loop(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
                kind = message.get("type")
                if kind == "debate.event":
                    self._on_event(message)
                elif kind == "debate.votes":
                    self._on_votes(message["debate"], message["version"], message["text"])
                elif kind == "debate.notice":
                    self._on_notice(message)
                elif kind == "hub.probe":
                    future = self._probes.get(message.get("nonce"))
                    if future is not None and not future.done():
                        future.set_result(True)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub receive loop error")
                await asyncio.sleep(0.5)

    def _on_event(self, message: dict) -> None:
        state = self.debates.get(message["debate"])
        if state is None or not state.subscribed:
            return
        state.pending.append(message)
        if state.drainer is None or state.drainer.done():
            state.drainer = asyncio.create_task(self._drain(message["debate"], state))

    def _on_notice(self, message: dict) -> None:
        state = self.debates.get(message["debate"])
        if state is not None and state.subscribed and state.members:
            task = asyncio.create_task(self._notify(state, message["text"]))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _notify(self, state: _Debate, text: str) -> None:
        """Write a notice (no seq) to every live local viewer of the debate."""
        frame = encode_text_frame(text)
        for index, consumer in enumerate(list(state.members), start=1):
            try:
                await consumer.send_heartbeat(text, frame)
            except Exception:
                logger.debug("a notice to a viewer failed", exc_info=True)
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _drain(self, debate_id: str, state: _Debate) -> None:
        # Events that arrive during a fan-out go out together in the next one: one write per
        # viewer for all of them, so a busy process makes fewer, larger writes.
        async with state.deliver_lock:
            while state.pending:
                batch, state.pending = state.pending, []
                events: list[tuple[int, str]] = []
                newest = state.last_seq
                for message in batch:
                    for seq, text in protocol.layer_events(message):
                        if seq <= newest:
                            continue
                        if seq > newest + 1:
                            events += await self._read_missing(debate_id, newest, upto=seq - 1)
                        events.append((seq, text))
                        newest = seq
                if events:
                    created = min(m.get("created") or m.get("ts") or 0 for m in batch)
                    await self._fan_out(debate_id, state, events, created or None)

    async def _read_missing(self, debate_id: str, after: int, upto: int | None = None):
        missing = [
            (seq, text)
            for seq, text in await get_event_log().read_after(debate_id, after)
            if upto is None or seq <= upto
        ]
        if missing:
            logger.info("hub repaired %d missed events of %s", len(missing), debate_id)
        return missing

    async def _fan_out(self, debate_id, state: _Debate, events: list[tuple[int, str]], ts) -> None:
        state.last_seq = events[-1][0]
        state.fanned_out_at = asyncio.get_running_loop().time()
        frames = [encode_text_frame(text) for _, text in events]
        joined = b"".join(frames)
        sent = 0
        for index, consumer in enumerate(list(state.members), start=1):
            try:
                count = consumer.deliver_now(events, joined)
                sent += await consumer.deliver(events, frames, joined) if count is None else count
            except Exception:
                # e.g. a frame autobahn refuses (over its message size limit): never silent.
                logger.warning("delivery to a viewer of %s failed", debate_id, exc_info=True)
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        if sent:
            metrics.MESSAGES_SENT.inc(sent)
            if ts:
                metrics.EVENT_SEND_LATENCY.observe(max(0.0, time.time() - ts))

    # --- vote tallies (a latest value, no seq) -------------------------------------------------

    def votes_of(self, debate_id: str) -> tuple[int, str] | None:
        """The newest DEBATE/VOTES of the debate this process has: (version, text), or None."""
        state = self.debates.get(debate_id)
        if state is None or state.votes_text is None:
            return None
        return state.votes_version, state.votes_text

    async def _load_votes(self, debate_id: str, state: _Debate) -> None:
        # Read after the subscription is live: with the messages from here on, nothing is missed.
        try:
            version, text = await database_sync_to_async(tallies.current)(debate_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("reading the vote tallies of %s failed", debate_id, exc_info=True)
            return
        if self.debates.get(debate_id) is state:
            self._on_votes(debate_id, version, text)

    def _on_votes(self, debate_id: str, version: int, text: str) -> None:
        """Called with a debate's tallies: keep the newest; fan out at most once per interval."""
        state = self.debates.get(debate_id)
        if state is None or not state.subscribed or version <= state.votes_version:
            return
        state.votes_version, state.votes_text = version, text
        if state.votes_timer is not None:
            return  # the due fan-out sends the newest
        loop = asyncio.get_running_loop()
        delay = state.votes_sent_at + tallies.interval_s() - loop.time()
        if delay <= 0:
            self._fan_out_votes(debate_id, state)
        else:
            state.votes_timer = loop.call_later(delay, self._fan_out_votes, debate_id, state)

    def _fan_out_votes(self, debate_id: str, state: _Debate) -> None:
        state.votes_timer = None
        if state.votes_version <= state.votes_written:
            return  # a fan-out already wrote the newest
        state.votes_sent_at = asyncio.get_running_loop().time()
        task = asyncio.ensure_future(self._write_votes(debate_id, state))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _write_votes(self, debate_id: str, state: _Debate) -> None:
        """Write the newest tallies to every local viewer, giving the loop back as _fan_out does."""
        version, text = state.votes_version, state.votes_text
        state.votes_written = version
        frame = encode_text_frame(text)
        sent = 0
        for index, consumer in enumerate(list(state.members), start=1):
            try:
                done = consumer.deliver_votes_now(version, frame)
                if done is None:
                    await consumer.deliver_votes(version, text)
                    done = 1
                sent += done
            except Exception:
                logger.warning("vote tallies to a viewer of %s failed", debate_id, exc_info=True)
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        if sent:
            metrics.MESSAGES_SENT.inc(sent)

    @staticmethod
    def _forget_votes(state: _Debate) -> None:
        if state.votes_timer is not None:
            state.votes_timer.cancel()
            state.votes_timer = None
        if state.votes_task is not None:
            state.votes_task.cancel()

    async def _tick_loop(self) -> None:
        interval = float(settings.WS_PING_INTERVAL_S)
        try:
            # Start-up sweep: rows a killed process left open (SIGTERM may skip disconnect).
            await presence.process_keepalive()
            await services.viewer_sweep_stale(
                process=self.process, local_ids=set(), process_started_at=self.started_at
            )
        except Exception:
            logger.exception("start-up viewer sweep failed")
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub tick failed")

    async def _repair_tail(self, debate_id: str, state: _Debate) -> None:
        """Deliver events the log has beyond the newest one fanned out (lost from pub/sub)."""
        if not state.subscribed:
            return
        latest = await get_event_log().last_seq(debate_id)
        if latest <= state.last_seq:
            return
        async with state.deliver_lock:
            missing = await self._read_missing(debate_id, state.last_seq)
            now = asyncio.get_running_loop().time()
            holed = bool(missing) and missing[0][0] != state.last_seq + 1
            # The log lacks the events before these (Redis came back empty): the publisher still
            # holds them and sends them with these in its next message. Give it HOLE_GRACE_S
            # before fanning out past the hole.
            if holed and (state.hole_since is None or now - state.hole_since < HOLE_GRACE_S):
                state.hole_since = state.hole_since or now
                return
            state.hole_since = None
            if missing:
                await self._fan_out(debate_id, state, missing, None)

    async def _repair_loop(self) -> None:
        # A debate quiet for REPAIR_INTERVAL_S may have lost its last events from pub/sub (the
        # layer drops what is published while it resubscribes, e.g. after CLIENT KILL TYPE
        # pubsub): its final status must not wait for the next tick.
        while True:
            await asyncio.sleep(REPAIR_INTERVAL_S)
            quiet_since = asyncio.get_running_loop().time() - REPAIR_INTERVAL_S
            for debate_id, state in list(self.debates.items()):
                if state.fanned_out_at >= quiet_since or not state.members:
                    continue
                try:
                    await self._repair_tail(debate_id, state)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.debug("tail repair of %s failed", debate_id, exc_info=True)
                    break

    async def tick(self) -> None:
        """Heartbeat every live local viewer, repair lost tail events, sweep stale viewers."""
        text = protocol.encode(protocol.ping())
        frame = encode_text_frame(text)
        sent = 0
        viewer_ids = []
        quiet_since = asyncio.get_running_loop().time() - float(settings.WS_PING_INTERVAL_S)
        for debate_id, state in list(self.debates.items()):
            # Viewers of a debate that streamed within the interval had a write: no PING needed.
            needs_ping = state.fanned_out_at < quiet_since
            for index, consumer in enumerate(list(state.members), start=1):
                viewer_ids.append(consumer.viewer_id)
                if not needs_ping:
                    continue
                try:
                    if await consumer.send_heartbeat(text, frame):
                        sent += 1
                except Exception:
                    logger.debug("heartbeat to a viewer of %s failed", debate_id, exc_info=True)
                if index % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await self._repair_tail(debate_id, state)
        if sent:
            metrics.MESSAGES_SENT.inc(sent)
        local_ids = {v for v in viewer_ids if v is not None}
        await presence.process_keepalive()
        await services.viewer_sweep_stale(
            process=self.process, local_ids=local_ids, process_started_at=self.started_at
        )

    def disconnect_viewers(
        self, viewer_ids: set[int], code: int | None = None, message: str | None = None
    ) -> int:
        """Close the local sockets of these viewers with 4008, or `code` (on this hub's loop)."""
        found = [
            consumer
            for state in self.debates.values()
            for consumer in state.members
            if consumer.viewer_id in viewer_ids
        ]
        for consumer in found:
            task = asyncio.ensure_future(consumer.operator_disconnect(code, message))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return len(found)


_hubs: PerLoop[Hub] = PerLoop(Hub)


def on_disconnect_command(message: dict) -> None:
    """The ``viewers.disconnect`` control command: close these viewers' sockets held here."""
    viewer_ids = {int(pk) for pk in message.get("viewers", [])}
    code, text = message.get("code"), message.get("message")
    for loop, hub in _hubs.items():
        loop.call_soon_threadsafe(hub.disconnect_viewers, viewer_ids, code, text)


def get_hub() -> Hub:
    """The hub of the running event loop."""
    return _hubs.get()


async def close_hub() -> None:
    """Stop and forget the running loop's hub (tests)."""
    hub = _hubs.pop()
    if hub is not None:
        await hub.close()
