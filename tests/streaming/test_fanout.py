"""The hub's fan-out: events that arrive during a fan-out go out together, once, in seq order."""

import asyncio

import pytest

from streaming import fanout, protocol
from streaming.consumers import DebateConsumer
from streaming.eventlog import get_event_log
from streaming.fanout import get_hub
from streaming.server import encode_text_frame

DEBATE = "6f1c1d3e-0000-4000-8000-000000000077"


class RecordingViewer:
    """Stands in for a consumer: records each delivery the hub makes."""

    viewer_id = None

    def __init__(self):
        self.deliveries: list[list[int]] = []

    def deliver_now(self, events, joined):
        return None  # as for a viewer that is not on daphne: the hub awaits deliver

    async def deliver(self, events, frames, joined):
        assert frames == [encode_text_frame(text) for _, text in events]
        assert joined == b"".join(frames)
        self.deliveries.append([seq for seq, _ in events])
        return len(events)


class FastViewer(RecordingViewer):
    """A viewer the hub can write to without awaiting (daphne's open socket)."""

    def deliver_now(self, events, joined):
        self.deliveries.append([seq for seq, _ in events])
        return len(events)

    async def deliver(self, events, frames, joined):
        raise AssertionError("the fast path needs no coroutine")


async def _log(seq_count: int) -> list[dict]:
    """Append events to the log; return the channel-layer messages the publisher would send."""
    messages = []
    for turn in range(1, seq_count + 1):
        head, tail = protocol.event_text_parts(
            protocol.TURN_CHANGE,
            {"debateId": DEBATE, "currentAgent": "bull", "turn": turn},
            protocol.now_iso(),
        )
        seq, text = await get_event_log().append(DEBATE, head, tail)
        messages.append({"type": "debate.event", "debate": DEBATE, "seq": seq, "text": text})
    return messages


async def _drained(hub):
    await hub.debates[DEBATE].drainer


async def test_events_arriving_together_reach_each_viewer_in_one_delivery():
    hub, viewers = get_hub(), [RecordingViewer(), RecordingViewer()]
    for viewer in viewers:
        await hub.join(DEBATE, viewer)
    for message in await _log(3):
        hub._on_event(message)  # three arrivals before the fan-out task runs
    await _drained(hub)
    assert [v.deliveries for v in viewers] == [[[1, 2, 3]], [[1, 2, 3]]]


async def test_a_viewer_with_a_fast_path_is_written_without_awaiting_it():
    hub, fast, slow = get_hub(), FastViewer(), RecordingViewer()
    for viewer in (fast, slow):
        await hub.join(DEBATE, viewer)
    for message in await _log(2):
        hub._on_event(message)
    await _drained(hub)
    assert fast.deliveries == slow.deliveries == [[1, 2]]


async def test_duplicates_are_dropped_and_a_gap_is_read_from_the_log():
    hub, viewer = get_hub(), RecordingViewer()
    await hub.join(DEBATE, viewer)
    first, _lost, third = await _log(3)
    for message in (first, first, third):
        hub._on_event(message)
    await _drained(hub)
    hub._on_event(third)  # late duplicate
    await _drained(hub)
    assert viewer.deliveries == [[1, 2, 3]]


@pytest.fixture
def live_consumer():
    consumer = DebateConsumer()
    consumer.live, consumer.sent = True, []

    async def base_send(message):
        consumer.sent.append(message["text"])

    consumer.base_send = base_send
    return consumer


def _batch(*seqs):
    events = [(seq, f'{{"seq":{seq}}}') for seq in seqs]
    frames = [encode_text_frame(text) for _, text in events]
    return events, frames, b"".join(frames)


async def test_a_viewer_gets_only_the_events_after_its_last_sent_seq(live_consumer):
    live_consumer.last_sent = 2
    assert await live_consumer.deliver(*_batch(1, 2, 3, 4)) == 2
    assert live_consumer.sent == ['{"seq":3}', '{"seq":4}']
    assert live_consumer.last_sent == 4


async def test_on_daphne_a_batch_is_one_socket_write(live_consumer):
    writes = []
    live_consumer._write_frame = lambda data: writes.append(data) or True
    events, frames, joined = _batch(5, 6)
    assert await live_consumer.deliver(events, frames, joined) == 2
    assert writes == [joined]
    assert live_consumer.sent == []
    live_consumer._write_frame = lambda data: False  # the socket is closing
    assert await live_consumer.deliver(*_batch(7)) == 0


async def test_the_fast_path_declines_only_a_batch_partly_sent_already(live_consumer):
    live_consumer._write_frame = lambda data: True
    live_consumer.last_sent = 3
    events, _, joined = _batch(2, 3)
    assert live_consumer.deliver_now(events, joined) == 0  # all sent already: nothing to do
    events, _, joined = _batch(3, 4)
    assert live_consumer.deliver_now(events, joined) is None  # seq 3 must not go twice
    assert live_consumer.last_sent == 3
    events, _, joined = _batch(4, 5)
    assert live_consumer.deliver_now(events, joined) == 2
    assert live_consumer.last_sent == 5


async def test_a_viewer_not_yet_live_buffers_the_batch(live_consumer):
    live_consumer.live = False
    assert await live_consumer.deliver(*_batch(1, 2)) == 0
    assert [seq for seq, _ in live_consumer.buffer] == [1, 2]


@pytest.mark.django_db(transaction=True)
async def test_the_tick_pings_only_viewers_of_a_debate_quiet_for_an_interval(debate, settings):
    from streaming.publisher import publish_event
    from tests.streaming.conftest import connect

    settings.WS_PING_INTERVAL_S = 30
    comm, _ = await connect(debate.id)
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    assert (await comm.receive_json_from(timeout=5))["payload"]["seq"] == 1
    hub = get_hub()
    await hub.tick()  # it streamed just now: the event proved the link, no PING
    assert await comm.receive_nothing(timeout=0.2)
    hub.debates[str(debate.id)].fanned_out_at -= 31  # as if 31 s had passed in silence
    await hub.tick()
    assert (await comm.receive_json_from(timeout=5))["type"] == protocol.PING
    await comm.disconnect()


async def test_a_lost_last_event_is_repaired_by_the_quick_pass_not_the_tick(monkeypatch, settings):
    # The tick (pings, sweeps) is an hour away: only the quick pass may bring the lost tail.
    settings.WS_PING_INTERVAL_S = 3600
    monkeypatch.setattr(fanout, "REPAIR_INTERVAL_S", 0.05)
    hub, viewer = get_hub(), RecordingViewer()
    await hub.join(DEBATE, viewer)
    first, _lost = await _log(2)  # the second never arrives through pub/sub
    hub._on_event(first)
    await _drained(hub)
    for _ in range(200):
        if viewer.deliveries == [[1], [2]]:
            break
        await asyncio.sleep(0.02)
    assert viewer.deliveries == [[1], [2]]


async def test_a_viewer_joining_while_the_last_one_leaves_stays_subscribed(monkeypatch):
    hub, first, second = get_hub(), RecordingViewer(), RecordingViewer()
    await hub.join(DEBATE, first)
    discard = hub.layer.group_discard

    async def slow_discard(group, channel):
        await asyncio.sleep(0.05)  # the unsubscribe takes a round trip: a join arrives meanwhile
        await discard(group, channel)

    monkeypatch.setattr(hub.layer, "group_discard", slow_discard)
    leaving = asyncio.create_task(hub.leave(DEBATE, first))
    await asyncio.sleep(0.01)
    await hub.join(DEBATE, second)
    await leaving
    state = hub.debates[DEBATE]
    assert state.subscribed
    assert state.members == {second}
    (message,) = await _log(1)
    hub._on_event(message)
    await _drained(hub)
    assert second.deliveries == [[1]]


def _lose_seq(monkeypatch, seq: int) -> None:
    """The log forgets one event (Redis came back empty after the publisher logged it)."""
    log = get_event_log()
    read_after = log.read_after

    async def holed(debate_id, after_seq):
        return [event for event in await read_after(debate_id, after_seq) if event[0] != seq]

    monkeypatch.setattr(log, "read_after", holed)


async def test_a_repair_waits_a_pass_before_skipping_events_the_log_lost(monkeypatch):
    # The log has seq 3 but not 2, which is still on its way from the publisher (it sends 2 and
    # 3 together): the repair must not deliver 3 before 2 arrives.
    monkeypatch.setattr(fanout, "REPAIR_INTERVAL_S", 3600)
    hub, viewer = get_hub(), RecordingViewer()
    await hub.join(DEBATE, viewer)
    first, second, third = await _log(3)
    hub._on_event(first)
    await _drained(hub)
    _lose_seq(monkeypatch, 2)
    await hub._repair_tail(DEBATE, hub.debates[DEBATE])
    assert viewer.deliveries == [[1]]
    hub._on_event({**second, "events": [[2, second["text"]], [3, third["text"]]]})
    await _drained(hub)
    assert viewer.deliveries == [[1], [2, 3]]


async def test_a_repair_skips_a_hole_that_stays(monkeypatch):
    monkeypatch.setattr(fanout, "REPAIR_INTERVAL_S", 3600)
    monkeypatch.setattr(fanout, "HOLE_GRACE_S", 0)
    hub, viewer = get_hub(), RecordingViewer()
    await hub.join(DEBATE, viewer)
    first, _second, _third = await _log(3)
    hub._on_event(first)
    await _drained(hub)
    _lose_seq(monkeypatch, 2)
    await hub._repair_tail(DEBATE, hub.debates[DEBATE])  # sees the hole
    await hub._repair_tail(DEBATE, hub.debates[DEBATE])  # a pass later: lost for good
    assert viewer.deliveries == [[1], [3]]
