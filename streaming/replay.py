"""Replay of a finished debate: when each archived event is due, from the events' timestamps.

A replay sends the same texts and seqs as the catch-up, but spaced as they were created (each
event's ``timestamp``), sped up ``speed`` times; ``instant`` sends them at once. A quiet stretch
longer than REPLAY_MAX_GAP_S (a slow model thinking, a takeover after a dead runner) counts as
that long. Events with seq <= ``at`` go at once, so a viewer can jump to a point of the debate.
A synthesised archive (streaming.archive) replays at the pace its arguments were saved: each
argument's turn, text and end arrive together, then the wait until the next one was saved.
The schedule is fixed when the replay starts (offsets from its start), so waits never add up
late and no event is ever sent before its time.
"""

from dataclasses import dataclass
from datetime import datetime

import orjson

from streaming import protocol


class ReplayQueryError(ValueError):
    """A replay query the server cannot honour (bad speed or at)."""


@dataclass(frozen=True)
class Replay:
    """How one socket replays: its speed (0 for instant) and the seq it starts at."""

    speed: float
    at: int
    label: str  # the speed as asked: "1", "2", "10" or "instant"

    @property
    def instant(self) -> bool:
        """True when every event goes at once."""
        return self.speed == 0

    def describe(self) -> dict:
        """CONNECTED.replay: ``{speed, at}``."""
        return {"speed": self.label, "at": self.at}


def parse_replay(params: dict[str, str]) -> Replay | None:
    """The replay a socket's query asks for, or None (watch as usual); raise ReplayQueryError."""
    if params.get(protocol.REPLAY_PARAM) not in ("1", "true"):
        return None
    label = params.get(protocol.SPEED_PARAM) or "1"
    if label not in protocol.REPLAY_SPEEDS:
        raise ReplayQueryError(label)
    raw_at = params.get(protocol.AT_PARAM) or "0"
    if not raw_at.isdigit() or len(raw_at) > 12:
        raise ReplayQueryError(raw_at)
    speed = 0.0 if label == protocol.INSTANT else float(label)
    return Replay(speed=speed, at=int(raw_at), label=label)


def event_time(text: str) -> float | None:
    """An event text's ``timestamp`` as epoch seconds, or None when it has none."""
    try:
        stamp = orjson.loads(text).get("timestamp")
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None


def schedule(events: list[tuple[int, str]], replay: Replay, max_gap_s: float) -> list[float]:
    """Seconds after the replay's start at which each event is due (same order as events)."""
    offsets: list[float] = []
    offset = 0.0
    previous: float | None = None
    for seq, text in events:
        moment = event_time(text)
        # The first event after `at` goes at once too: the jump lands on it.
        if seq > replay.at + 1 and not replay.instant and offsets and previous is not None:
            gap = 0.0 if moment is None else min(max(moment - previous, 0.0), max_gap_s)
            offset += gap / replay.speed
        offsets.append(offset)
        if moment is not None:
            previous = moment
    return offsets
