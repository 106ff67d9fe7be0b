"""The fast path: pre-encoded frames written straight to daphne's WebSocket transports.

For daphne 4.2.3, autobahn 26.11.1 and Twisted 26.10.0. Through the ASGI interface a daphne
``websocket.send`` costs ~110 µs of CPU per frame per viewer (docs/benchmarks.md): autobahn
frames the message again for every viewer. The hub encodes each event's frame once
(streaming.server.frames) and ``frame_writer`` finds, behind a consumer's ASGI ``send`` (daphne
passes ``functools.partial(Server.handle_reply, protocol)``), autobahn's protocol, and writes the
frame to its Twisted transport while the socket is open, bypassing autobahn. Frames are whole
messages written on the loop's thread, so they never interleave with a frame autobahn writes;
permessage-deflate allows uncompressed messages (RSV1 clear). It relies on how daphne passes
``send`` and on autobahn's ``state``/``transport``, hence the exact versions. Without it (or under
any other server) ``frame_writer`` returns None and consumers use ``websocket.send``: correct,
slower. Frames written are counted in ``ws_fast_path_frames_total``.
"""

import asyncio
import contextlib
import functools
import sys
import time
from collections.abc import Callable

from streaming import metrics
from streaming.server import send_buffer
from streaming.server.frames import count_frames
from streaming.server.patching import Patch, Undo

FrameWriter = Callable[[bytes], bool]

FLUSH_INTERVAL_S = 1.0

_enabled = False


class _Tally:
    """Frames written, counted in a plain int and added to the Prometheus counter once a second
    (the hot path writes one frame per viewer per event)."""

    __slots__ = ("data", "frames", "loop", "pending", "timer")

    def __init__(self) -> None:
        self.data, self.frames, self.pending = b"", 0, 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.timer: asyncio.TimerHandle | None = None

    def add(self, data: bytes) -> None:
        # One fan-out writes the same bytes object to every viewer: count its frames once.
        if data is not self.data:
            self.data, self.frames = data, count_frames(data)
        self.pending += self.frames

    def flush(self) -> None:
        if self.pending:
            metrics.FAST_PATH_FRAMES.inc(self.pending)
            self.pending = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.loop is loop and self.timer is not None:
            return
        self.stop()
        self.loop = loop
        self.timer = loop.call_later(FLUSH_INTERVAL_S, self._tick)

    def _tick(self) -> None:
        self.flush()
        self.timer = self.loop.call_later(FLUSH_INTERVAL_S, self._tick)

    def stop(self) -> None:
        if self.timer is not None:
            with contextlib.suppress(RuntimeError):  # its loop is already closed
                self.timer.cancel()
        self.timer = self.loop = None
        self.data, self.frames = b"", 0
        self.flush()


tally = _Tally()


def daphne_protocol(send):
    """The protocol behind daphne's ASGI send, ``partial(Server.handle_reply, protocol)``;
    None for any other server."""
    # Looked up, never imported: importing daphne.server installs Twisted's reactor.
    server = sys.modules.get("daphne.server")
    if server is None or not isinstance(send, functools.partial) or len(send.args) != 1:
        return None
    if getattr(send.func, "__func__", None) is not server.Server.handle_reply:
        return None
    return send.args[0]


def client_gone(send, error: BaseException | None = None) -> bool:
    """Whether the client behind daphne's `send` has disconnected (daphne then drops every
    reply to it; `error`, what the set-up raised, may be autobahn's "send on a closed protocol"
    before daphne marks it); False under any other server, where it cannot be known."""
    autobahn = sys.modules.get("autobahn.exception")
    if error is not None and autobahn is not None and isinstance(error, autobahn.Disconnected):
        return True
    protocol = daphne_protocol(send)
    server = getattr(send.func, "__self__", None) if protocol is not None else None
    connections = getattr(server, "connections", None)
    if connections is None:
        return False
    # daphne's own test in Server.handle_reply.
    return protocol not in connections or bool(connections[protocol].get("disconnected"))


def is_daphne_send(send) -> bool:
    """Whether `send` is the ASGI send daphne hands its application."""
    return daphne_protocol(send) is not None


def frame_writer(send) -> FrameWriter | None:
    """A function writing pre-encoded frames to the socket behind `send` (daphne, with this
    patch applied), which returns False once the socket is no longer open; None otherwise."""
    if not _enabled:
        return None
    protocol = daphne_protocol(send)
    ws_protocol = sys.modules.get("daphne.ws_protocol")
    if protocol is None or ws_protocol is None:
        return None
    if not isinstance(protocol, ws_protocol.WebSocketProtocol):
        return None
    with contextlib.suppress(RuntimeError):  # no running loop: counts flush on uninstall
        tally.start(asyncio.get_running_loop())
    limits = send_buffer.bound()
    open_state, add = protocol.STATE_OPEN, tally.add

    def write(frame: bytes) -> bool:
        transport = protocol.transport
        if protocol.state != open_state or transport is None:
            return False
        transport.write(frame)
        add(frame)
        if limits is not None and getattr(transport, "_tempDataLen", 0):
            send_buffer.enforce(protocol, *limits, time.monotonic())
        return True

    return write


def apply() -> Undo:
    """Turn the fast path on (frame_writer returns writers from now on)."""
    global _enabled
    _enabled = True

    def undo() -> None:
        global _enabled
        _enabled = False
        tally.stop()

    return undo


PATCH = Patch(
    name="fast_path",
    requires={"daphne": "4.2.3", "autobahn": "26.11.1", "Twisted": "26.10.0"},
    apply=apply,
    without="autobahn frames every message again for every viewer (slower)",
)
