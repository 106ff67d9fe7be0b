"""The load generator's viewer: frames split anywhere, shared bytes read once, seq accounting."""

import time

import orjson
import pytest

from bench import wsclient
from streaming.protocol import CONNECTED, STATUS_UPDATE, TOKEN_RECEIVED
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


def event_frame(seq: int, kind: str = TOKEN_RECEIVED, **payload) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
    text = orjson.dumps({"type": kind, "payload": {"seq": seq, **payload}, "timestamp": stamp})
    return encode_text_frame(text.decode())


def connected_frame() -> bytes:
    return encode_text_frame(orjson.dumps({"type": CONNECTED, "payload": {}}).decode())


def new_viewer(stats: wsclient.Stats) -> wsclient.Viewer:
    viewer = wsclient.Viewer(b"GET / HTTP/1.1\r\n\r\n", stats)
    viewer.connection_made(FakeTransport())
    return viewer


@pytest.fixture(autouse=True)
def empty_caches():
    wsclient._reads.clear()
    wsclient._messages.clear()


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
