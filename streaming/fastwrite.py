"""Cheaper sends under daphne: each event's frame is encoded once and written to every socket.

Through the ASGI interface a daphne ``websocket.send`` costs ~110 µs of CPU per frame per
viewer (docs/benchmarks.md): autobahn frames the message again for every viewer, and Twisted
never tries the socket inline, so each frame costs an ``add_writer`` and a ``remove_writer``
(two ``epoll_ctl`` calls and a loop round trip). For the hub's live events and heartbeats,
which are the same bytes for every viewer, this module:

- encodes the server-to-client text frame once per event (``encode_text_frame``);
- finds, behind a consumer's ASGI ``send``, daphne's WebSocket protocol, and writes the frame
  to its transport while the socket is open (``frame_writer``); any other server (uvicorn,
  the test communicator) gets ``None`` and the consumer keeps using ``websocket.send``;
- makes Twisted's TCP transport try ``send()`` at once when nothing is queued
  (``patch_inline_socket_writes``), as asyncio's transports do; what the kernel does not take
  is queued and written by the reactor exactly as before.

Frames are whole messages written on the loop's thread, so they never interleave with a frame
autobahn writes; permessage-deflate allows uncompressed messages (RSV1 clear). The send-buffer
bound (streaming.backpressure) is applied after a raw write that left data queued.
"""

import functools
import time
from collections.abc import Callable
from pprint import pformat

from streaming import backpressure

FrameWriter = Callable[[bytes], bool]


def encode_text_frame(text: str) -> bytes:
    """The RFC 6455 server-to-client frame (FIN, text, unmasked) carrying `text`."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def _daphne_protocol(send):
    """daphne passes its apps ``partial(Server.handle_reply, protocol)``: that protocol."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return None
    protocol = send.args[0]
    return protocol if isinstance(protocol, WebSocketProtocol) else None


def frame_writer(send) -> FrameWriter | None:
    """A function writing a pre-encoded frame to the socket behind `send` (daphne only), which
    returns False once the socket is no longer open; None for any other server."""
    protocol = _daphne_protocol(send)
    if protocol is None:
        return None
    limit, grace_s = backpressure.send_buffer_limit(), backpressure.send_buffer_grace_s()
    open_state = protocol.STATE_OPEN

    def write(frame: bytes) -> bool:
        transport = protocol.transport
        if protocol.state != open_state or transport is None:
            return False
        transport.write(frame)
        if getattr(transport, "_tempDataLen", 0):
            backpressure.enforce(protocol, limit, grace_s, time.monotonic())
        return True

    return write


def patch_inline_socket_writes() -> None:
    """Make Twisted's TCP transports send at once when nothing is queued (see the module doc)."""
    try:
        from twisted.internet import tcp
    except ImportError:
        return
    if getattr(tcp.Connection.write, "_inline", False):
        return
    queued_write = tcp.Connection.write

    def write(self, data):
        if (
            type(data) is bytes
            and not self.TLS  # after startTLS, plaintext must go through the TLS layer
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self._tempDataLen
            and len(self.dataBuffer) == self.offset
        ):
            # writeSomeData's checks, without its slicing and retry wrapper: send() already
            # retries EINTR (PEP 475), and a 128 KiB send limit is moot for these frames.
            try:
                sent = self.socket.send(data)
            except OSError:
                # EAGAIN: queue. A lost connection (ECONNRESET, EPIPE) also queues, and the
                # reactor's next writeSomeData reports the loss, as Twisted would.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        queued_write(self, data)

    write._inline = True
    tcp.Connection.write = write


class _LazyPformat:
    """pformat on demand: autobahn formats its whole config per connection for a debug log."""

    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __str__(self) -> str:
        return pformat(self.obj)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def patch_autobahn_config_log() -> None:
    """Format autobahn's per-connection config dump only when its debug log is written."""
    try:
        from autobahn.websocket import protocol
    except ImportError:
        return
    protocol.pformat = _lazy_pformat


def _lazy_pformat(obj):
    # Only the per-connection config dump is a list; Timings.__str__ must still get a str.
    return _LazyPformat(obj) if isinstance(obj, list) else pformat(obj)
