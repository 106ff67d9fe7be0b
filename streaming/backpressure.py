"""A per-connection bound on daphne's write buffer, so a viewer that stops reading cannot grow
the server's memory without limit.

daphne writes every frame straight into the socket's Twisted transport (the ASGI send never
waits), so the fan-out never slows down for a slow viewer, but Twisted keeps whatever the kernel
does not take in a user-space buffer, unbounded. This checks that buffer after each frame sent
to a WebSocket and on daphne's periodic timeout check (every 2 s): a connection whose unsent
data stays above ``WS_SEND_BUFFER_LIMIT_BYTES`` (default 1 MiB; 0 disables) for
``WS_SEND_BUFFER_GRACE_S`` (default 10 s) is aborted. The grace lets a healthy client absorb a
burst (a long catch-up is written in one go); a client that does not drain is dropped. daphne
then sends the consumer ``websocket.disconnect`` (its Viewer row is closed); the client sees
1006 and resumes with ``lastSeq`` (exact, from the event log). Memory per viewer is bounded by
the limit plus what arrives during the grace plus one catch-up. Transports without Twisted's
TCP buffer (e.g. TLS terminated in daphne) are not bounded here.
"""

import logging
import time

from django.conf import settings

from streaming import metrics

logger = logging.getLogger(__name__)


def send_buffer_limit() -> int:
    """The write-buffer bound in bytes (0: unbounded)."""
    return max(int(settings.WS_SEND_BUFFER_LIMIT_BYTES), 0)


def send_buffer_grace_s() -> float:
    """How long a connection may stay above the bound before it is dropped."""
    return max(float(settings.WS_SEND_BUFFER_GRACE_S), 0.0)


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


def patch_daphne_send_buffer() -> None:
    """Bound every daphne WebSocket's write buffer (see the module docstring)."""
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return
    if getattr(WebSocketProtocol.handle_reply, "_bounded", False):
        return
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

    bounded_handle_reply._bounded = True
    WebSocketProtocol.handle_reply = bounded_handle_reply
    WebSocketProtocol.check_timeouts = bounded_check_timeouts
