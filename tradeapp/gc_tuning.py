"""Garbage-collector tuning for a daphne serving process (tradeapp.serving calls tune_gc once).

With Python's default thresholds (700, 10, 10) a server holding thousands of WebSocket
connections runs full (generation 2) collections again and again while connections arrive,
and each one walks every live object: 100-500 ms pauses of the event loop at a few thousand
connections, which is what set-up latency's tail measured (docs/benchmarks.md). Objects made
at start-up are moved out of the collector's sight (``gc.freeze``), and the thresholds come
from SERVER_GC_THRESHOLDS: generation 0 is collected every 50,000 net allocations instead of
700, so garbage cycles are still found, only in fewer, larger passes.
"""

import gc

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def gc_thresholds() -> tuple[int, int, int]:
    """SERVER_GC_THRESHOLDS as three positive integers."""
    raw = list(settings.SERVER_GC_THRESHOLDS)
    try:
        values = tuple(int(v) for v in raw)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ImproperlyConfigured(
            f"SERVER_GC_THRESHOLDS must be three positive integers, got {','.join(map(str, raw))!r}"
        )
    return values


def tune_gc() -> None:
    """Collect and freeze what start-up made, then apply SERVER_GC_THRESHOLDS."""
    thresholds = gc_thresholds()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
