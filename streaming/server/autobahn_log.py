"""Patch autobahn's per-connection debug-log arguments so they are formatted lazily:
``pformat`` and ``hltype`` in ``autobahn.websocket.protocol``, ``hltype`` in
``autobahn.twisted.websocket``.

For autobahn 26.11.1. On every new connection autobahn pretty-prints its whole configuration
(a list of attributes), and about ten times per connection it colours a method's qualified name
(``hltype``: ``inspect`` plus two ``click.style`` calls), all for debug log lines that are
almost never written; this formats them only when a line is. Without it each connection costs
that work (correct, slower set-up: ~10 % of a connection's CPU in a storm, profiled).
"""

from pprint import pformat

from streaming.server.patching import Patch, Undo, replace, undo_all


class _Lazy:
    """``func(obj)`` as a string, computed only when formatted."""

    __slots__ = ("func", "obj")

    def __init__(self, func, obj) -> None:
        self.func = func
        self.obj = obj

    def __str__(self) -> str:
        return self.func(self.obj)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def lazy_pformat(obj):
    """A lazy pformat for the per-connection config dump (a list), pformat for anything else."""
    # Timings.__str__ returns pformat(...) and must still get a str.
    return _Lazy(pformat, obj) if isinstance(obj, list) else pformat(obj)


def lazy_hltype(obj) -> _Lazy:
    """autobahn.util.hltype(obj), computed only if a debug line is written."""
    from autobahn.util import hltype  # only in a process that serves (as apply's imports)

    return _Lazy(hltype, obj)


def apply() -> Undo:
    """Format autobahn's per-connection debug-log arguments only when a line is written."""
    # Imported when applied, in a daphne process: the others skip ~0.2 s of server imports.
    from autobahn.twisted import websocket
    from autobahn.websocket import protocol

    return undo_all(
        [
            replace(protocol, "pformat", lazy_pformat),
            replace(protocol, "hltype", lazy_hltype),
            replace(websocket, "hltype", lazy_hltype),
        ]
    )


PATCH = Patch(
    name="autobahn_lazy_config_log",
    requires={"autobahn": "26.11.1"},
    apply=apply,
    without="each connection formats autobahn's config and method names for debug lines "
    "(slower set-up)",
)
