"""Patch ``autobahn.websocket.protocol.pformat`` so autobahn's config dump is formatted lazily.

For autobahn 26.11.1. On every new connection autobahn pretty-prints its whole configuration
(a list of attributes) for a debug log line that is almost never written; this formats it only
when the line is. Without it each connection costs that ``pformat`` (correct, slower set-up).
"""

from pprint import pformat

from streaming.server.patching import Patch, Undo, replace


class _LazyPformat:
    """pformat on demand."""

    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __str__(self) -> str:
        return pformat(self.obj)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def lazy_pformat(obj):
    """A lazy pformat for the per-connection config dump (a list), pformat for anything else."""
    # Timings.__str__ returns pformat(...) and must still get a str.
    return _LazyPformat(obj) if isinstance(obj, list) else pformat(obj)


def apply() -> Undo:
    """Format autobahn's per-connection config dump only when its debug log is written."""
    # Imported when applied, in a daphne process: the others skip ~0.2 s of server imports.
    from autobahn.websocket import protocol

    return replace(protocol, "pformat", lazy_pformat)


PATCH = Patch(
    name="autobahn_lazy_config_log",
    requires={"autobahn": "26.11.1"},
    apply=apply,
    without="each connection formats autobahn's whole config for a debug line (slower set-up)",
)
