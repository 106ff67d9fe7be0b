"""The daphne fast path: frames encoded once, Twisted writes tried inline, in order."""

import socket
import sys
import types

import pytest
from prometheus_client import REGISTRY
from twisted.internet import error, tcp
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from streaming.server import (
    client_gone,
    encode_text_frame,
    fast_path,
    frame_writer,
    inline_writes,
)
from streaming.server.frames import count_frames


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


def test_frames_written_back_to_back_are_counted():
    frames = [encode_text_frame("x" * size) for size in (0, 5, 200, 70000, 3)]
    assert count_frames(b"".join(frames)) == 5
    assert count_frames(frames[3][:-1]) == 0  # a cut frame is not a frame
    assert count_frames(b"") == 0


def test_no_frame_writer_outside_daphne():
    async def send(message):  # e.g. uvicorn or the test communicator
        pass

    assert frame_writer(send) is None


# --- frame_writer against stand-ins for daphne's server and protocol ------------------------


class _Transport:
    def __init__(self) -> None:
        self.written, self._tempDataLen, self.aborted = [], 0, False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abortConnection(self) -> None:
        self.aborted = True


@pytest.fixture
def fake_daphne(monkeypatch):
    """daphne.server and daphne.ws_protocol stand-ins (importing the real daphne.server would
    install Twisted's reactor in the test process) and a send daphne would pass."""
    import functools

    class Server:
        async def handle_reply(self, protocol, message):
            pass

    class WebSocketProtocol:
        STATE_OPEN = 1

        def __init__(self) -> None:
            self.state, self.transport = 1, _Transport()

    monkeypatch.setitem(sys.modules, "daphne.server", types.SimpleNamespace(Server=Server))
    monkeypatch.setitem(
        sys.modules,
        "daphne.ws_protocol",
        types.SimpleNamespace(WebSocketProtocol=WebSocketProtocol),
    )
    protocol = WebSocketProtocol()
    return protocol, functools.partial(Server().handle_reply, protocol)


@pytest.fixture
def fast_path_on():
    undo = fast_path.PATCH.apply()
    yield
    undo()


def _fast_path_frames() -> float:
    return REGISTRY.get_sample_value("ws_fast_path_frames_total") or 0.0


def test_no_frame_writer_while_the_fast_path_is_off(fake_daphne):
    _protocol, send = fake_daphne
    assert fast_path.is_daphne_send(send)
    assert frame_writer(send) is None


def test_frame_writer_writes_counts_and_stops_once_closed(fake_daphne, fast_path_on):
    protocol, send = fake_daphne
    write = frame_writer(send)
    before = _fast_path_frames()
    joined = encode_text_frame("a") + encode_text_frame("b")
    assert write(joined)
    assert write(joined)  # the next viewer of the same fan-out: counted without a parse
    assert write(encode_text_frame("ping"))
    assert protocol.transport.written == [joined, joined, encode_text_frame("ping")]
    fast_path.tally.flush()
    assert _fast_path_frames() - before == 5
    protocol.state = 3  # closing
    assert not write(joined)
    assert len(protocol.transport.written) == 3


# --- inline socket writes --------------------------------------------------------------------


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
    undo = inline_writes.PATCH.apply()
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    reactor = _Reactor()
    connection = tcp.Connection(ours, protocol=None, reactor=reactor)
    connection.connected = 1
    yield connection, peer, reactor
    ours.close()
    peer.close()
    undo()


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


def test_client_gone_reads_daphnes_own_record_of_the_connection(monkeypatch):
    import functools

    class Server:
        def __init__(self) -> None:
            self.connections: dict = {}

        async def handle_reply(self, protocol, message):
            pass

    monkeypatch.setitem(sys.modules, "daphne.server", types.SimpleNamespace(Server=Server))
    server, protocol = Server(), object()
    send = functools.partial(server.handle_reply, protocol)
    server.connections[protocol] = {}
    assert not client_gone(send)
    server.connections[protocol]["disconnected"] = 1700000000.0
    assert client_gone(send)
    del server.connections[protocol]  # daphne forgets a connection it cleaned up
    assert client_gone(send)
    assert not client_gone(lambda message: None)  # another server: cannot be known


def test_a_send_on_a_closed_protocol_means_the_client_is_gone():
    # The client left during set-up before daphne marked its connection: autobahn refuses the
    # send, which is no server error (no 4500, no ERROR line).
    from autobahn.exception import Disconnected

    send = lambda message: None  # noqa: E731 - any server
    assert client_gone(send, Disconnected("Attempt to send on a closed protocol"))
    assert not client_gone(send, RuntimeError("a real failure"))
