"""The wire protocol: every WebSocket message type and shape, defined once (DESIGN §3).

Server messages are Redux-style actions ``{type, payload, timestamp}``. Debate events
(TOKEN_RECEIVED, ARGUMENT_COMPLETE, TURN_CHANGE, STATUS_UPDATE, USAGE, and the moderator's
PAUSED, RESUMED, QUESTION, CONCLUDING) carry ``payload.seq``; the
other messages (CONNECTED, ERROR, PING, PONG) do not. A debate event's ``timestamp`` is when it
was created (a merged token frame: its first token), and the events the publisher sent carry
``publishedAt`` too (added): when they left the coalescing outbox.

Client frames: a client may send text JSON objects ``{"type": "DEBATE/PING"}`` (answered with
``DEBATE/PONG``) or ``{"type": "DEBATE/PONG"}`` (accepted silently, e.g. as a reply to the
server's heartbeat). Anything else is answered with ``DEBATE/ERROR`` code 4400 and a ``reason``
(binary_frame, too_large, invalid_json, not_an_object, unknown_type); a frame over the socket's
rate (WS_CLIENT_FRAMES_PER_S, with a burst) with ``DEBATE/ERROR`` code 4429 and is not acted on;
after ``MAX_BAD_FRAMES`` refused frames (bad or over the rate) the server closes with 1008
(policy violation).

Close codes (the server accepts, sends ``DEBATE/ERROR {code, message, reason}``, then closes):
4001 unauthorized (bad, expired, refresh or missing token; also when the access token expires on
an open socket), 4003 origin not allowed, 4004 debate not found (or malformed id, or a path
that is no debate's socket),
4008 disconnected by an operator (admin action), 4029 rate limited, 4500 internal error, 4503
a service the socket needs (Redis, the database) is down for now (reconnect with backoff);
1001 going away (the server process shuts down: reconnect with lastSeq).

``DEBATE/RECOVERING {debateId, reason}`` (added, no seq): the debate's runner stopped
(``runner_stopped``: its process shut down; ``runner_silent``: it stopped heartbeating) and
another process takes it over; the takeover then re-sends ``running`` and the unfinished turn's
TURN_CHANGE, which restarts that turn's text.
"""

from datetime import UTC, datetime
from enum import IntEnum

import orjson

CONNECTED = "DEBATE/CONNECTED"
TOKEN_RECEIVED = "DEBATE/TOKEN_RECEIVED"
ARGUMENT_COMPLETE = "DEBATE/ARGUMENT_COMPLETE"
TURN_CHANGE = "DEBATE/TURN_CHANGE"
STATUS_UPDATE = "DEBATE/STATUS_UPDATE"
# The usage meter (added): tokens and cost so far, per agent and in total.
USAGE = "DEBATE/USAGE"
ERROR = "DEBATE/ERROR"
PING = "DEBATE/PING"
PONG = "DEBATE/PONG"
# A notice without a seq (added): the debate's runner stopped and another process is taking the
# debate over; its unfinished turn restarts (docs/streaming.md, "Takeover").
RECOVERING = "DEBATE/RECOVERING"
# RECOVERING.reason: the runner's process shut down and released it, or stopped heartbeating.
RECOVERING_REASONS = ("runner_stopped", "runner_silent")
# Moderator controls (added): the run announces pause, resume and concluding; a question is
# announced as it is asked.
PAUSED = "DEBATE/PAUSED"
RESUMED = "DEBATE/RESUMED"
QUESTION = "DEBATE/QUESTION"
CONCLUDING = "DEBATE/CONCLUDING"

# Debate events, with the payload fields the producer must give (debateId and seq are added).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    TOKEN_RECEIVED: ("agent", "token", "turn"),
    ARGUMENT_COMPLETE: ("agent", "content", "turn"),
    TURN_CHANGE: ("currentAgent", "turn"),
    STATUS_UPDATE: ("status",),
    # Tokens and US dollars so far (cost null when a model has no price): perAgent {bull, bear,
    # moderator: {promptTokens, completionTokens, cost}}, total {same}, estimated (any count
    # ours), budget {tokens, cost} | null; at each argument's end and every N tokens of one.
    USAGE: ("perAgent", "total", "estimated", "budget"),
    PAUSED: ("pausedAt",),
    RESUMED: (),
    QUESTION: ("questionId", "text", "askedBy", "turn"),
    CONCLUDING: ("reason",),
}
EVENT_TYPES = tuple(EVENT_FIELDS)

# Frames a client may send.
CLIENT_TYPES = (PING, PONG)
# Every message type the server sends.
SERVER_TYPES = (CONNECTED, *EVENT_TYPES, ERROR, PING, PONG, RECOVERING)
# Debate statuses after which no event follows (a STATUS_UPDATE with one ends the stream).
FINAL_STATUSES = ("completed", "failed", "cancelled")
MAX_CLIENT_FRAME_CHARS = 4096
MAX_BAD_FRAMES = 20


class Close(IntEnum):
    """WebSocket close codes (and DEBATE/ERROR codes) of this protocol."""

    UNAUTHORIZED = 4001
    ORIGIN_NOT_ALLOWED = 4003
    NOT_FOUND = 4004
    OPERATOR_DISCONNECT = 4008
    RATE_LIMITED = 4029
    BAD_FRAME = 4400  # an ERROR code only: the socket stays open
    TOO_MANY_FRAMES = 4429  # an ERROR code only: the frame is dropped, the socket stays open
    INTERNAL = 4500
    UNAVAILABLE = 4503  # a service the socket needs (Redis, the database) is down: retry later
    POLICY_VIOLATION = 1008  # standard code: too many bad frames
    GOING_AWAY = 1001  # standard code: the server process shuts down; reconnect with lastSeq


# code -> (reason, human message)
CLOSE_MESSAGES: dict[int, tuple[str, str]] = {
    Close.UNAUTHORIZED: ("unauthorized", "A valid access token is required."),
    Close.ORIGIN_NOT_ALLOWED: ("origin_not_allowed", "This origin may not open debate sockets."),
    Close.NOT_FOUND: ("not_found", "No such debate."),
    Close.OPERATOR_DISCONNECT: ("operator_disconnect", "Disconnected by an operator."),
    Close.RATE_LIMITED: ("rate_limited", "Too many new connections; try again later."),
    Close.INTERNAL: ("internal_error", "Internal error."),
    Close.UNAVAILABLE: ("unavailable", "Temporarily unavailable; reconnecting will resume."),
    Close.TOO_MANY_FRAMES: ("too_many_frames", "Too many frames; slow down."),
    Close.POLICY_VIOLATION: ("too_many_bad_frames", "Too many invalid frames."),
    Close.GOING_AWAY: ("going_away", "This server is shutting down; reconnect to resume."),
}


class ClientFrameError(ValueError):
    """A client frame this protocol does not accept; `reason` names why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def group_name(debate_id) -> str:
    """The channel-layer group of one debate."""
    return f"debate.{debate_id}"


def layer_events(message: dict) -> list[tuple[int, str]]:
    """The (seq, text) events of a ``debate.event`` channel-layer message: one event
    (``seq``, ``text``) or several published together (``events``)."""
    if "events" in message:
        return [(seq, text) for seq, text in message["events"]]
    return [(message["seq"], message["text"])]


def now_iso() -> str:
    """The current time as ISO 8601 UTC with a Z suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_at(epoch: float) -> str:
    """An epoch time (seconds) as ISO 8601 UTC with a Z suffix, to the millisecond."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def action(action_type: str, payload: dict, timestamp: str | None = None) -> dict:
    """A Redux-style action {type, payload, timestamp}."""
    return {"type": action_type, "payload": payload, "timestamp": timestamp or now_iso()}


def encode(message: dict) -> str:
    """Serialise one action to its JSON text (once per process, never per viewer)."""
    return orjson.dumps(message).decode()


def normalise_type(action_type: str) -> str:
    """Accept "TOKEN_RECEIVED" as well as "DEBATE/TOKEN_RECEIVED"; refuse unknown events."""
    full = action_type if action_type.startswith("DEBATE/") else f"DEBATE/{action_type}"
    if full not in EVENT_FIELDS:
        raise ValueError(f"not a debate event type: {action_type!r}")
    return full


def event_payload(action_type: str, debate_id, fields: dict) -> dict:
    """The payload of a debate event without its seq, in wire order; refuse missing fields."""
    missing = [name for name in EVENT_FIELDS[action_type] if name not in fields]
    if missing:
        raise ValueError(f"{action_type} needs {', '.join(missing)}")
    extra = {k: v for k, v in fields.items() if k not in ("debateId", "seq")}
    return {"debateId": str(debate_id), **extra}


def event(action_type: str, debate_id, seq: int, timestamp: str | None = None, **fields) -> dict:
    """A complete debate event action (used for replay synthesis and tests)."""
    payload = {**event_payload(action_type, debate_id, fields), "seq": seq}
    return action(action_type, payload, timestamp)


def event_text_parts(
    action_type: str, payload: dict, timestamp: str, published_at: str | None = None
) -> tuple[str, str]:
    """The event's JSON text split around its seq: ``head + str(seq) + tail`` is the text.

    ``timestamp`` is when the event was created (a merged token: its first token);
    ``published_at`` (the added ``publishedAt``) when the publisher sent it, after coalescing.
    The seq is assigned atomically by the event log (in Redis, inside a Lua script), so the text
    is built around it instead of being re-encoded after the seq is known.
    """
    body = orjson.dumps(payload).decode()  # payload never holds "seq" here
    inner = body[1:-1]
    head = '{"type":' + orjson.dumps(action_type).decode() + ',"payload":{' + inner
    head += ',"seq":' if inner else '"seq":'
    tail = '},"timestamp":' + orjson.dumps(timestamp).decode()
    if published_at is not None:
        tail += ',"publishedAt":' + orjson.dumps(published_at).decode()
    return head, tail + "}"


def usage_budget(tokens: int | None, cost: float | None) -> dict | None:
    """USAGE.budget: the limits the debate concludes at, or None when it has none."""
    if tokens is None and cost is None:
        return None
    return {"tokens": tokens, "cost": cost}


def connected(debate_id, status: str, last_seq: int, viewers: int, reset: bool = False) -> dict:
    """DEBATE/CONNECTED: the debate's status, newest seq, live viewer count and reset flag.

    ``reset`` true: the client's lastSeq does not belong to the numbering being replayed (a
    debate re-synthesised from the database, or a log that was lost), so the events that follow
    start again at seq 1 and the client must discard what it holds of this debate first.
    """
    return action(
        CONNECTED,
        {
            "debateId": str(debate_id),
            "status": status,
            "lastSeq": last_seq,
            "viewers": viewers,
            "reset": bool(reset),
        },
    )


def error(code: int, message: str | None = None, reason: str | None = None) -> dict:
    """DEBATE/ERROR {code, message, reason}."""
    default_reason, default_message = CLOSE_MESSAGES.get(code, ("error", "Error."))
    return action(
        ERROR,
        {
            "code": int(code),
            "message": message or default_message,
            "reason": reason or default_reason,
        },
    )


def ping() -> dict:
    """DEBATE/PING: the server's heartbeat."""
    return action(PING, {})


def pong() -> dict:
    """DEBATE/PONG: the answer to a client's DEBATE/PING."""
    return action(PONG, {})


def recovering(debate_id, reason: str) -> dict:
    """DEBATE/RECOVERING {debateId, reason}: the debate is being taken over by another process
    (no seq: a notice, never replayed)."""
    if reason not in RECOVERING_REASONS:
        raise ValueError(f"not a recovering reason: {reason!r}")
    return action(RECOVERING, {"debateId": str(debate_id), "reason": reason})


def decode_client_frame(text: str | None, binary: bytes | None = None) -> dict:
    """Parse and check one client frame; raise ClientFrameError when it is not acceptable."""
    if text is None:
        raise ClientFrameError("binary_frame", "Binary frames are not accepted.")
    if len(text) > MAX_CLIENT_FRAME_CHARS:
        raise ClientFrameError(
            "too_large", f"Frames are limited to {MAX_CLIENT_FRAME_CHARS} chars."
        )
    try:
        content = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ClientFrameError("invalid_json", "The frame is not valid JSON.") from None
    if not isinstance(content, dict):
        raise ClientFrameError("not_an_object", "The frame must be a JSON object.")
    if content.get("type") not in CLIENT_TYPES:
        raise ClientFrameError("unknown_type", f"Accepted types: {', '.join(CLIENT_TYPES)}.")
    return content
