"""Moderator controls that arrive over a debate's socket, handed to the app that owns them.

The consumer may not reach debates' services (the import contracts), so debates registers the
one handler in its AppConfig.ready(): ``register("debates.controls.socket_command")``. The
handler is synchronous (it writes to the database): ``handler(debate_id=, user=, action=,
text=)`` returns ``(status, detail)``, the HTTP status the same control gets over REST.
"""

from django.utils.module_loading import import_string

_handler = None


def register(handler) -> None:
    """Set the handler of socket controls (a callable or its dotted path, imported on first use)."""
    global _handler
    _handler = handler


def apply(*, debate_id: str, user, action: str, text: str | None) -> tuple[int, str]:
    """Run a socket control through the registered handler: (status, detail)."""
    global _handler
    if _handler is None:
        return 501, "Controls are not available on this server."
    if isinstance(_handler, str):
        _handler = import_string(_handler)
    return _handler(debate_id=debate_id, user=user, action=action, text=text)
