"""The wire protocol: every WebSocket message type and shape, defined once (DESIGN §3)."""

from datetime import UTC, datetime

CONNECTED = "DEBATE/CONNECTED"
TOKEN_RECEIVED = "DEBATE/TOKEN_RECEIVED"
ARGUMENT_COMPLETE = "DEBATE/ARGUMENT_COMPLETE"
TURN_CHANGE = "DEBATE/TURN_CHANGE"
STATUS_UPDATE = "DEBATE/STATUS_UPDATE"
ERROR = "DEBATE/ERROR"
PING = "DEBATE/PING"


def group_name(debate_id) -> str:
    """The channel-layer group of one debate."""
    return f"debate.{debate_id}"


def now_iso() -> str:
    """The current time as ISO 8601 UTC with a Z suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def action(action_type: str, payload: dict, timestamp: str | None = None) -> dict:
    """A Redux-style action {type, payload, timestamp}."""
    return {"type": action_type, "payload": payload, "timestamp": timestamp or now_iso()}
