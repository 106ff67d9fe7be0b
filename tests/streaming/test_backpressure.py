"""The write-buffer bound: a viewer whose unsent data passes the limit is aborted."""

import time
import types

import pytest
from daphne.ws_protocol import WebSocketProtocol

from streaming.server import send_buffer


class FakeTransport:
    """The buffer attributes of a Twisted FileDescriptor."""

    def __init__(self, data: bytes = b"", offset: int = 0, temp: int = 0) -> None:
        self.dataBuffer, self.offset, self._tempDataLen = data, offset, temp
        self.aborted = False

    def abortConnection(self) -> None:
        self.aborted = True


class FakeProtocol:
    def __init__(self, transport) -> None:
        self.transport = transport


def test_buffered_bytes_counts_both_twisted_buffers():
    assert send_buffer.buffered_bytes(FakeTransport(b"x" * 100, 40, 7)) == 67
    assert send_buffer.buffered_bytes(object()) == 0  # not a Twisted TCP transport


def test_enforce_aborts_only_past_the_limit():
    under = FakeProtocol(FakeTransport(b"x" * 1000))
    assert not send_buffer.enforce(under, 1000, 0, now=0)
    assert not under.transport.aborted
    over = FakeProtocol(FakeTransport(b"x" * 1000, temp=1))
    assert send_buffer.enforce(over, 1000, 0, now=0)
    assert over.transport.aborted
    disabled = FakeProtocol(FakeTransport(b"x" * 10_000))
    assert not send_buffer.enforce(disabled, 0, 0, now=0)
    assert not disabled.transport.aborted


def test_enforce_gives_a_burst_its_grace():
    protocol = FakeProtocol(FakeTransport(b"x" * 5000))
    assert not send_buffer.enforce(protocol, 1000, 10, now=100)  # over since t=100
    assert not send_buffer.enforce(protocol, 1000, 10, now=105)
    protocol.transport.dataBuffer = b"x" * 10  # drained: the clock restarts
    assert not send_buffer.enforce(protocol, 1000, 10, now=106)
    protocol.transport.dataBuffer = b"x" * 5000
    assert not send_buffer.enforce(protocol, 1000, 10, now=107)
    assert not send_buffer.enforce(protocol, 1000, 10, now=116)
    assert send_buffer.enforce(protocol, 1000, 10, now=117)
    assert protocol.transport.aborted
    assert not send_buffer.enforce(protocol, 1000, 10, now=118)  # aborted once


def test_limit_setting(settings):
    settings.WS_SEND_BUFFER_LIMIT_BYTES = 4096
    assert send_buffer.send_buffer_limit() == 4096
    settings.WS_SEND_BUFFER_LIMIT_BYTES = -1
    assert send_buffer.send_buffer_limit() == 0
    settings.WS_SEND_BUFFER_GRACE_S = 2.5
    assert send_buffer.send_buffer_grace_s() == 2.5


@pytest.fixture
def bound_applied(settings):
    settings.WS_SEND_BUFFER_LIMIT_BYTES, settings.WS_SEND_BUFFER_GRACE_S = 1000, 0
    undo = send_buffer.PATCH.apply()
    yield
    undo()


def test_daphne_timeout_check_drops_a_socket_over_the_bound(bound_applied):
    assert send_buffer.bound() == (1000, 0.0)
    protocol = WebSocketProtocol()
    protocol.state, protocol.transport = protocol.STATE_OPEN, FakeTransport(b"x" * 2000)
    protocol.server = types.SimpleNamespace(websocket_timeout=-1, ping_interval=1e9)
    protocol.socket_opened = protocol.last_ping = time.time()
    protocol.check_timeouts()
    assert protocol.transport.aborted


def test_the_bound_is_off_until_applied():
    assert send_buffer.bound() is None
