"""Patch ``daphne.access.AccessLogGenerator.write_entry`` to redact ``token=...``.

For daphne 4.2.3. daphne's NCSA access log (stdout at the default verbosity) prints each
request's path with its query string, and WebSocket clients pass their JWT as ``?token=``; the
log goes straight to a stream, past the logging filters (streaming.redaction). Without it tokens
appear in the access log: run daphne with ``-v 0`` or ``--access-log`` to a safe place.
"""

from streaming.redaction import redact
from streaming.server.patching import Patch, Undo, replace


def apply() -> Undo:
    """Redact the request line of every access-log entry."""
    # Imported when applied, in a daphne process: the others skip ~0.2 s of server imports.
    from daphne.access import AccessLogGenerator

    original = AccessLogGenerator.write_entry

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(self, host, date, redact(str(request)), *args, **kwargs)

    return replace(AccessLogGenerator, "write_entry", write_entry)


PATCH = Patch(
    name="access_log_redaction",
    requires={"daphne": "4.2.3"},
    apply=apply,
    without="daphne's access log prints tokens (run daphne with -v 0 or --access-log elsewhere)",
)
