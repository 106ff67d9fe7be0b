"""Patch daphne's ``WebSocketProtocol.handle_reply`` and ``check_timeouts`` to bound each
WebSocket's unsent data, so a viewer that stops reading cannot grow the server's memory.

For daphne 4.2.3, Twisted 26.10.0 and autobahn 26.11.1. daphne's ASGI send never waits:
autobahn writes each frame straight to the Twisted transport (its own send queue stays empty),
and Twisted keeps what the kernel does not take in its user-space buffer (``dataBuffer``,
``_tempDataBuffer``), unbounded. Twisted pauses the transport's producer (daphne's HTTP channel)
past 64 KiB, which only stops reading from that socket. This checks the buffer after each frame
sent to a WebSocket (``websocket.send`` and the fast path) and on daphne's 2 s timeout check: a
connection whose unsent data stays above ``WS_SEND_BUFFER_LIMIT_BYTES`` (0 disables) for
``WS_SEND_BUFFER_GRACE_S`` is aborted. The grace lets a healthy client absorb a burst (a long
catch-up is written in one go). daphne then sends the consumer ``websocket.disconnect``; the
client sees 1006 and resumes with ``lastSeq``. Memory per viewer stays under the limit plus what
arrives within the grace, besides the kernel's socket buffer (docs/streaming.md has the measured
numbers). Without it a stalled reader holds everything sent to it until daphne's ping timeout
drops it, or for ever with pings off. Transports without Twisted's TCP buffer (TLS terminated in
daphne) are not bounded.
"""

import logging
import time

from django.conf import settings

from streaming import metrics
from streaming.server.patching import Patch, Undo, replace, undo_all

logger = logging.getLogger(__name__)

_bound: tuple[int, float] | None = None


def send_buffer_limit() -> int:
    """The write-buffer bound in bytes (0: unbounded)."""
    return max(int(settings.WS_SEND_BUFFER_LIMIT_BYTES), 0)


def send_buffer_grace_s() -> float:
    """How long a connection may stay above the bound before it is dropped."""
    return max(float(settings.WS_SEND_BUFFER_GRACE_S), 0.0)


def bound() -> tuple[int, float] | None:
    """(limit, grace) while the patch is applied, else None."""
    return _bound


def buffered_bytes(transport) -> int:
    """Bytes a Twisted FileDescriptor transport holds that the kernel has not taken yet."""
    data = getattr(transport, "dataBuffer", b"")
    offset = getattr(transport, "offset", 0)
    return max(len(data) - offset, 0) + getattr(transport, "_tempDataLen", 0)


def enforce(protocol, limit: int, grace_s: float, now: float) -> bool:
    """Abort the protocol's connection once its unsent data has stayed above `limit` for
    `grace_s` seconds; True when it was aborted now."""
    transport = getattr(protocol, "transport", None)
    if transport is None or limit <= 0:
        return False
    pending = buffered_bytes(transport)
    if pending <= limit:
        protocol._send_buffer_over_since = None
        return False
    since = getattr(protocol, "_send_buffer_over_since", None)
    if since is None:
        protocol._send_buffer_over_since = since = now
    if now - since < grace_s or getattr(protocol, "_send_buffer_aborted", False):
        return False
    protocol._send_buffer_aborted = True
    logger.info("dropping a slow viewer: %d bytes unsent (limit %d)", pending, limit)
    metrics.SLOW_VIEWERS_DROPPED.inc()
    transport.abortConnection()
    return True


def apply() -> Undo:
    """Bound every daphne WebSocket's write buffer."""
    global _bound
    # Imported when applied, in a daphne process: the others skip ~0.2 s of server imports.
    from daphne.ws_protocol import WebSocketProtocol

    handle_reply, check_timeouts = WebSocketProtocol.handle_reply, WebSocketProtocol.check_timeouts
    limit, grace_s = send_buffer_limit(), send_buffer_grace_s()

    def bounded_handle_reply(self, message):
        handle_reply(self, message)
        if message.get("type") == "websocket.send" and self.state == self.STATE_OPEN:
            enforce(self, limit, grace_s, time.monotonic())

    def bounded_check_timeouts(self):
        check_timeouts(self)
        if self.state == self.STATE_OPEN:
            enforce(self, limit, grace_s, time.monotonic())

    undos = [
        replace(WebSocketProtocol, "handle_reply", bounded_handle_reply),
        replace(WebSocketProtocol, "check_timeouts", bounded_check_timeouts),
    ]
    _bound = (limit, grace_s)

    def forget() -> None:
        global _bound
        _bound = None

    return undo_all([*undos, forget])


PATCH = Patch(
    name="send_buffer_bound",
    requires={"daphne": "4.2.3", "Twisted": "26.10.0", "autobahn": "26.11.1"},
    apply=apply,
    without="a viewer that stops reading holds server memory until daphne's ping timeout",
)
