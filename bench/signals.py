"""Cleanup that runs however a run ends: normal return, exception, SIGTERM or interpreter exit."""

import atexit
import contextlib
import signal
from collections.abc import Callable, Iterator


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def cleanup_on_exit(cleanup: Callable[[], None]) -> Iterator[None]:
    """Call `cleanup` on leaving, at exit, and on SIGTERM (raised as KeyboardInterrupt)."""
    atexit.register(cleanup)
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):  # not in the main thread
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        cleanup()
        atexit.unregister(cleanup)
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)
