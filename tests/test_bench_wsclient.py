"""The load generator's viewer: frames split anywhere, shared bytes read once, seq accounting."""

import asyncio
import time

import orjson
import pytest

from bench import wsclient
from streaming import protocol
from streaming.protocol import CONNECTED, STATUS_UPDATE, TOKEN_RECEIVED, TURN_CHANGE
from streaming.server import encode_text_frame

UPGRADE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"


class FakeTransport:
    """Records what the viewer writes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".000Z"


def event_frame(
    seq: int, kind: str = TOKEN_RECEIVED, published: str | None = None, at=None, **payload
):
    stamp = iso(time.time() if at is None else at)
    message = {"type": kind, "payload": {"seq": seq, **payload}, "timestamp": stamp}
    if published:
        message["publishedAt"] = published
    return encode_text_frame(orjson.dumps(message).decode())


def connected_frame(last_seq: int = 0) -> bytes:
    message = {"type": CONNECTED, "payload": {"lastSeq": last_seq}}
    return encode_text_frame(orjson.dumps(message).decode())


def new_viewer(stats: wsclient.Stats) -> wsclient.Viewer:
    viewer = wsclient.Viewer(b"GET / HTTP/1.1\r\n\r\n", stats)
    viewer.connection_made(FakeTransport())
    return viewer


@pytest.fixture(autouse=True)
def empty_caches():
    wsclient._reads.clear()
    wsclient._messages.clear()
    wsclient._versions.clear()


async def test_frames_split_at_every_byte_are_read_like_whole_ones():
    stream = (
        UPGRADE
        + connected_frame()
        + event_frame(1, token="a" * 200)  # 16-bit length header
        + event_frame(2, token="b")
        + event_frame(3, STATUS_UPDATE, status="completed")
    )
    stats = wsclient.Stats()
    viewer = new_viewer(stats)
    for i in range(len(stream)):
        viewer.data_received(stream[i : i + 1])

    assert viewer.handshake.result() is True
    assert viewer.ready.result() is True
    assert (viewer.last_seq, viewer.final_seq, viewer.final_status) == (3, 3, "completed")
    assert viewer.done.result() is True
    assert (stats.events, stats.token_frames, viewer.gaps, viewer.dups) == (3, 2, set(), 0)
    assert sum(stats.token_hist.values()) == 2
    assert sum(stats.event_hist.values()) == 3
    assert not viewer.buf


async def test_viewers_reading_the_same_bytes_each_count_them():
    stats = wsclient.Stats()
    viewers = [new_viewer(stats) for _ in range(3)]
    for viewer in viewers:
        viewer.data_received(UPGRADE + connected_frame())
    batch = event_frame(1, token="x") + event_frame(2, token="y")
    for viewer in viewers:
        viewer.data_received(batch)

    assert batch in wsclient._reads  # parsed once, then looked up
    assert [v.last_seq for v in viewers] == [2, 2, 2]
    assert stats.events == 6
    assert stats.token_frames == 6


async def test_a_read_ending_mid_frame_keeps_the_rest_for_the_next_read():
    stats = wsclient.Stats()
    viewer = new_viewer(stats)
    viewer.data_received(UPGRADE + connected_frame())
    data = event_frame(1) + event_frame(2)
    cut = len(data) - 3
    viewer.data_received(data[:cut])

    assert viewer.last_seq == 1
    assert data[:cut] not in wsclient._reads  # a partial read is never shared
    viewer.data_received(data[cut:])
    assert viewer.last_seq == 2
    assert not viewer.buf


async def test_gaps_duplicates_and_late_events_are_counted():
    stats = wsclient.Stats()
    viewer = new_viewer(stats)
    viewer.data_received(UPGRADE + connected_frame())
    for seq in (1, 4, 2, 4):
        viewer.data_received(event_frame(seq))

    assert viewer.gaps == {3}
    assert viewer.reordered == 1
    assert viewer.dups == 1


async def test_a_ping_is_answered_with_a_masked_pong_of_its_payload():
    viewer = new_viewer(wsclient.Stats())
    viewer.data_received(UPGRADE + bytes((0x89, 4)) + b"ping")

    pong = viewer.transport.written[-1]
    assert pong[0] == 0x8A  # FIN + pong
    assert pong[1] == 0x80 | 4  # masked, 4 bytes
    mask = pong[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(pong[6:])) == b"ping"


async def test_a_refused_upgrade_records_the_http_status():
    viewer = new_viewer(wsclient.Stats())
    viewer.data_received(b"HTTP/1.1 403 Forbidden\r\n\r\n")

    assert viewer.close_code == -403
    assert viewer.transport.closed


async def test_latency_is_taken_from_production_and_from_the_flush():
    stats = wsclient.Stats()
    viewer = new_viewer(stats)
    viewer.data_received(UPGRADE + connected_frame())
    now = time.time()  # made about 5 s ago, sent about 1 s ago
    viewer.data_received(event_frame(1, token="x", published=iso(now - 1), at=now - 5))
    viewer.data_received(event_frame(2, TURN_CHANGE))  # no publishedAt: production only

    (production,) = stats.token_hist
    (flush,) = stats.token_flush_hist
    assert flush < production  # sent after it was made: the flush is the nearer
    assert sum(stats.event_hist.values()) == 2
    assert sum(stats.event_flush_hist.values()) == 1


async def test_a_resumed_viewer_counts_its_catch_up_without_timing_it():
    stats = wsclient.Stats()
    viewer = new_viewer(stats)
    viewer.data_received(UPGRADE + connected_frame())
    viewer.data_received(event_frame(1) + event_frame(2))
    viewer.connection_lost(None)
    viewer.reconnects = 1
    viewer._socket(b"GET / HTTP/1.1\r\n\r\n")
    viewer.connection_made(FakeTransport())
    viewer.data_received(UPGRADE + connected_frame(last_seq=4) + event_frame(3) + event_frame(4))
    viewer.data_received(event_frame(5))

    assert (viewer.last_seq, viewer.gaps, viewer.dups) == (5, set(), 0)
    assert stats.replayed == 2  # seqs 3 and 4 came with the catch-up
    assert stats.token_frames == 3  # 1, 2 and the live 5 were timed


async def test_a_lost_viewer_comes_back_through_another_server_with_its_last_seq():
    requests: list[bytes] = []

    async def serve(reader, writer):
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            UPGRADE
            + connected_frame(last_seq=2)
            + event_frame(3, STATUS_UPDATE, status="completed")
        )
        await writer.drain()
        writer.close()

    other = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = other.sockets[0].getsockname()[1]
    try:
        stats = wsclient.Stats()
        viewer = new_viewer(stats)
        viewer.data_received(UPGRADE + connected_frame() + event_frame(1) + event_frame(2))
        gone = ("127.0.0.1", 1)  # the first target, now dead
        watching = wsclient.keep_watching(
            viewer, [gone, ("127.0.0.1", port)], 0, lambda n: f"/ws/?lastSeq={n}", "o", None, 5
        )
        viewer.connection_lost(None)
        assert not viewer.done.done()  # a lost socket is not the end
        async with asyncio.timeout(30):
            await watching

        assert viewer.done.result() is True
        assert requests[0].startswith(b"GET /ws/?lastSeq=2 ")
        assert (viewer.last_seq, viewer.final_status, viewer.gaps, viewer.dups) == (
            3,
            "completed",
            set(),
            0,
        )
        assert viewer.disrupted
        assert len(viewer.rehome_times) == 1
    finally:
        other.close()
        await other.wait_closed()


async def test_vote_tallies_are_recorded_with_their_version_and_never_as_events():
    stats = wsclient.Stats()
    viewers = [new_viewer(stats), new_viewer(stats)]
    zero = {"bull": 0, "bear": 0}
    tallies = [
        encode_text_frame(
            protocol.encode(
                protocol.votes("d", version=v, before=zero, after=zero, swing=None, moved_to=None)
            )
        )
        for v in (3, 8)
    ]
    for viewer in viewers:
        viewer.data_received(UPGRADE + connected_frame())
        viewer.data_received(tallies[0] + event_frame(1, TURN_CHANGE))
        viewer.data_received(tallies[1])
        assert [version for _at, version in viewer.votes] == [3, 8]
        assert viewer.votes[0][0] <= viewer.votes[1][0]
        assert (viewer.last_seq, viewer.gaps, viewer.dups) == (1, set(), 0)
    assert stats.events == 2  # the TURN_CHANGE of each viewer: tallies are no events
