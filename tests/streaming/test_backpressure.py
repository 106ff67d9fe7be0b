"""The write-buffer bound: a viewer whose unsent data passes the limit is aborted."""

from daphne.ws_protocol import WebSocketProtocol

from streaming import backpressure


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
    assert backpressure.buffered_bytes(FakeTransport(b"x" * 100, 40, 7)) == 67
    assert backpressure.buffered_bytes(object()) == 0  # not a Twisted TCP transport


def test_enforce_aborts_only_past_the_limit():
    under = FakeProtocol(FakeTransport(b"x" * 1000))
    assert not backpressure.enforce(under, 1000, 0, now=0)
    assert not under.transport.aborted
    over = FakeProtocol(FakeTransport(b"x" * 1000, temp=1))
    assert backpressure.enforce(over, 1000, 0, now=0)
    assert over.transport.aborted
    disabled = FakeProtocol(FakeTransport(b"x" * 10_000))
    assert not backpressure.enforce(disabled, 0, 0, now=0)
    assert not disabled.transport.aborted


def test_enforce_gives_a_burst_its_grace():
    protocol = FakeProtocol(FakeTransport(b"x" * 5000))
    assert not backpressure.enforce(protocol, 1000, 10, now=100)  # over since t=100
    assert not backpressure.enforce(protocol, 1000, 10, now=105)
    protocol.transport.dataBuffer = b"x" * 10  # drained: the clock restarts
    assert not backpressure.enforce(protocol, 1000, 10, now=106)
    protocol.transport.dataBuffer = b"x" * 5000
    assert not backpressure.enforce(protocol, 1000, 10, now=107)
    assert not backpressure.enforce(protocol, 1000, 10, now=116)
    assert backpressure.enforce(protocol, 1000, 10, now=117)
    assert protocol.transport.aborted
    assert not backpressure.enforce(protocol, 1000, 10, now=118)  # aborted once


def test_limit_setting(settings):
    settings.WS_SEND_BUFFER_LIMIT_BYTES = 4096
    assert backpressure.send_buffer_limit() == 4096
    settings.WS_SEND_BUFFER_LIMIT_BYTES = -1
    assert backpressure.send_buffer_limit() == 0
    settings.WS_SEND_BUFFER_GRACE_S = 2.5
    assert backpressure.send_buffer_grace_s() == 2.5


def test_daphne_is_patched_by_the_asgi_module():
    import tradeapp.asgi  # noqa: F401

    assert getattr(WebSocketProtocol.handle_reply, "_bounded", False)
    assert WebSocketProtocol.check_timeouts.__name__ == "bounded_check_timeouts"
