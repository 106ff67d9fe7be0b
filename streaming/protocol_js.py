"""Render static/js/protocol.js, the browser's copy of the constants of streaming/protocol.py."""

import json
from pathlib import Path

from django.conf import settings

from streaming import protocol

COMMAND = "python manage.py protocol_js"


def default_path() -> Path:
    """Where the generated module lives: static/js/protocol.js of the project."""
    return Path(settings.BASE_DIR) / "static" / "js" / "protocol.js"


def action_types() -> dict[str, str]:
    """Every message type, server's and client's, by its name without the DEBATE/ prefix."""
    types = dict.fromkeys((*protocol.SERVER_TYPES, *protocol.CLIENT_TYPES))
    return {action_type.removeprefix("DEBATE/"): action_type for action_type in types}


def close_codes() -> dict[str, int]:
    """Every member of protocol.Close by its name."""
    return {member.name: int(member) for member in protocol.Close}


def socket_query() -> dict[str, str]:
    """The socket's replay and share query parameters by name."""
    return {
        "REPLAY": protocol.REPLAY_PARAM,
        "SPEED": protocol.SPEED_PARAM,
        "AT": protocol.AT_PARAM,
        "SHARE": protocol.SHARE_PARAM,
    }


def _frozen_object(entries: dict) -> str:
    lines = "".join(f"  {name}: {json.dumps(value)},\n" for name, value in entries.items())
    return "Object.freeze({\n" + lines + "})"


def render() -> str:
    """The text of static/js/protocol.js."""
    statuses = ", ".join(json.dumps(status) for status in protocol.FINAL_STATUSES)
    speeds = ", ".join(json.dumps(speed) for speed in protocol.REPLAY_SPEEDS)
    return (
        f"// Generated from streaming/protocol.py by `{COMMAND}`: do not edit by hand.\n"
        "// Run it again after changing protocol.py; `--check` fails while this file is stale.\n"
        "\n"
        "/** Every message type: server actions and client frames. */\n"
        f"export const ActionType = {_frozen_object(action_types())};\n"
        "\n"
        "/** WebSocket close codes (and DEBATE/ERROR codes), named as in protocol.Close. */\n"
        f"export const CloseCode = {_frozen_object(close_codes())};\n"
        "\n"
        "/** Debate statuses after which no event follows. */\n"
        f"export const FINAL_STATUSES = Object.freeze([{statuses}]);\n"
        "\n"
        "/** Query parameters of a replay or a share link's socket, and the replay speeds. */\n"
        f"export const SocketQuery = {_frozen_object(socket_query())};\n"
        f"export const REPLAY_SPEEDS = Object.freeze([{speeds}]);\n"
    )
