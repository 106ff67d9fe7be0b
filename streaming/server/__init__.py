"""Every patch of daphne, Twisted and autobahn, applied by ``install()`` in a serving process.

Each patch (one module here) declares the exact versions it was written and tested for;
``install()`` applies a patch only when those are the installed versions, and otherwise logs a
WARNING and leaves it off: the project then works correctly but slower. tradeapp.serving calls
``install()`` on the first scope daphne serves; tests never install on import (``uninstall()``
restores the originals). Active patches: ``active()`` and the ``server_patch_active`` gauge.
"""

import logging

from streaming import metrics
from streaming.server import (
    access_log,
    autobahn_log,
    close_codes,
    fast_path,
    inline_writes,
    send_buffer,
)
from streaming.server.fast_path import client_gone, frame_writer, is_daphne_send
from streaming.server.frames import encode_text_frame
from streaming.server.patching import Patch, Undo, VersionOf, installed_version, mismatches

__all__ = [
    "PATCHES",
    "active",
    "client_gone",
    "encode_text_frame",
    "frame_writer",
    "install",
    "is_daphne_send",
    "uninstall",
]

logger = logging.getLogger(__name__)

# Redaction first: it must be in place before daphne writes its first access-log line.
PATCHES: tuple[Patch, ...] = (
    access_log.PATCH,
    send_buffer.PATCH,
    inline_writes.PATCH,
    fast_path.PATCH,
    autobahn_log.PATCH,
    close_codes.PATCH,
)

_applied: dict[str, Undo] | None = None


def install(version_of: VersionOf = installed_version) -> frozenset[str]:
    """Apply each patch written for the installed versions (once); the names of those active."""
    global _applied
    if _applied is not None:
        return frozenset(_applied)
    applied: dict[str, Undo] = {}
    for patch in PATCHES:
        wrong = mismatches(patch, version_of)
        if wrong:
            logger.warning(
                "server patch %s left off: written for %s, installed %s; without it %s",
                patch.name,
                ", ".join(f"{name}=={patch.requires[name]}" for name in wrong),
                ", ".join(f"{name}=={got or '(missing)'}" for name, got in wrong.items()),
                patch.without,
            )
        else:
            try:
                applied[patch.name] = patch.apply()
            except Exception:
                logger.exception("server patch %s failed to apply; left off", patch.name)
        metrics.SERVER_PATCH_ACTIVE.labels(patch=patch.name).set(1 if patch.name in applied else 0)
    _applied = applied
    logger.info("server patches active: %s", ", ".join(applied) or "none")
    return frozenset(applied)


def uninstall() -> None:
    """Undo every applied patch, restoring the original attributes (tests)."""
    global _applied
    if _applied is None:
        return
    for name, undo in reversed(list(_applied.items())):
        undo()
        metrics.SERVER_PATCH_ACTIVE.labels(patch=name).set(0)
    _applied = None


def active() -> frozenset[str]:
    """The names of the patches applied now."""
    return frozenset(_applied or ())
