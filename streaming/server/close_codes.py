"""Patch ``daphne.ws_protocol.WebSocketProtocol.serverClose`` to send the RFC 6455 codes
autobahn's ``sendClose`` refuses (it takes only 1000 and 3000-4999).

For daphne 4.2.3 and autobahn 26.11.1. The protocol closes a socket that keeps sending refused
frames with 1008 (policy violation); through ``sendClose`` autobahn raises instead, the close
never goes out and the socket stays open. The patch writes those codes with ``sendCloseFrame``,
the method ``sendClose`` itself ends in (and daphne's own 1011 uses). Without it such a socket
is left open, ignored by its consumer, until the client or daphne's ping timeout closes it.
"""

from streaming.server.patching import Patch, Undo, replace

# Close codes an endpoint may send (RFC 6455 section 7.4.1) that autobahn's sendClose refuses.
RFC_CODES = frozenset({1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})


def apply() -> Undo:
    """Let serverClose send RFC close codes such as 1008."""
    # Imported when applied, in a daphne process: the others skip ~0.2 s of server imports.
    from daphne.ws_protocol import WebSocketProtocol

    original = WebSocketProtocol.serverClose

    def server_close(self, code=None):
        if code in RFC_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code)

    return replace(WebSocketProtocol, "serverClose", server_close)


PATCH = Patch(
    name="rfc_close_codes",
    requires={"daphne": "4.2.3", "autobahn": "26.11.1"},
    apply=apply,
    without="a socket closed with 1008 stays open (autobahn refuses the code) until the client "
    "or the ping timeout closes it",
)
