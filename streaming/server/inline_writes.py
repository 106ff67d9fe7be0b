"""Patch ``twisted.internet.tcp.Connection.write`` so a write tries ``socket.send`` at once.

For Twisted 26.10.0. Twisted never tries the socket inline: every write is buffered and costs an
``add_writer`` and a ``remove_writer`` (two ``epoll_ctl`` calls and a loop round trip) before
the reactor sends it. When nothing is queued this sends at once, as asyncio's transports do;
what the kernel does not take is queued and written by the reactor exactly as before. It reads
the private buffer fields of ``abstract.FileDescriptor`` (``_tempDataLen``, ``dataBuffer``,
``offset``, ``_writeDisconnected``), hence the exact version. Without it every frame waits for
the reactor's next write pass (correct, slower: docs/benchmarks.md).
"""

from streaming.server.patching import Patch, Undo, replace


def apply() -> Undo:
    """Make Twisted's TCP transports send at once when nothing is queued."""
    # Imported when applied, in a daphne process: the others skip ~0.2 s of server imports.
    from twisted.internet import tcp

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

    return replace(tcp.Connection, "write", write)


PATCH = Patch(
    name="inline_writes",
    requires={"Twisted": "26.10.0"},
    apply=apply,
    without="every frame waits for the reactor's next write pass (slower)",
)
