"""The daphne fast path: frames encoded once, Twisted writes tried inline, in order."""

import socket

import pytest
from twisted.internet import error, tcp
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from streaming.fastwrite import encode_text_frame, frame_writer, patch_inline_socket_writes


def _parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_parses_back_to_the_same_text(size):
    text = ("é" if size % 2 else "a") * size
    frame = _parse(encode_text_frame(text))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin is True
    assert frame.data.decode("utf-8") == text


def test_no_frame_writer_outside_daphne():
    async def send(message):  # e.g. uvicorn or the test communicator
        pass

    assert frame_writer(send) is None


class _Reactor:
    """Records what the transport asks of the reactor."""

    def __init__(self):
        self.writers = []

    def addWriter(self, selectable):
        self.writers.append(selectable)

    def removeWriter(self, selectable):
        self.writers.remove(selectable)

    def callLater(self, *args, **kwargs):
        raise AssertionError("unexpected timer")


@pytest.fixture
def transport_pair():
    patch_inline_socket_writes()
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    reactor = _Reactor()
    connection = tcp.Connection(ours, protocol=None, reactor=reactor)
    connection.connected = 1
    yield connection, peer, reactor
    ours.close()
    peer.close()


def _drain(peer: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = peer.recv(size - got)
        assert chunk
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def test_write_goes_to_the_socket_at_once_when_nothing_is_queued(transport_pair):
    connection, peer, reactor = transport_pair
    connection.write(b"hello")
    assert reactor.writers == []  # no add_writer round trip
    assert _drain(peer, 5) == b"hello"


def test_what_the_kernel_refuses_is_queued_and_later_writes_keep_their_order(transport_pair):
    connection, peer, reactor = transport_pair
    big = bytes(range(256)) * 40_000  # ~10 MB: more than the socket pair buffers
    connection.write(big)
    assert reactor.writers == [connection]
    queued = len(connection.dataBuffer) - connection.offset + connection._tempDataLen
    assert 0 < queued < len(big)
    connection.write(b"after")  # must not jump the queue
    assert connection._tempDataLen > 0

    received = bytearray()
    while reactor.writers:
        received += peer.recv(1 << 20)
        connection.doWrite()
    received += _drain(peer, len(big) + 5 - len(received))
    assert bytes(received) == big + b"after"


def test_a_connection_after_start_tls_still_writes_through_its_tls_layer(transport_pair):
    connection, peer, _reactor = transport_pair

    class TlsLayer:
        written = []

        def write(self, data):
            self.written.append(data)

    connection.TLS, connection.protocol = True, TlsLayer()
    connection.write(b"plaintext")
    assert TlsLayer.written == [b"plaintext"]  # never straight to the socket
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)


def test_a_write_to_a_closed_peer_is_queued_and_the_reactor_reports_the_loss(transport_pair):
    connection, peer, reactor = transport_pair
    peer.close()
    connection.write(b"nobody listens")  # EPIPE on the inline send: never raised here
    assert reactor.writers == [connection]
    assert isinstance(connection.doWrite(), error.ConnectionLost)
