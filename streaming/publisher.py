"""The one function through which the runner publishes debate events."""

from channels.layers import get_channel_layer

from streaming import protocol

_next_seq: dict[str, int] = {}


async def publish_event(debate_id, action_type: str, payload: dict) -> dict:
    """Give the event its seq and send it to the debate's group; return the action sent."""
    key = str(debate_id)
    seq = _next_seq.get(key, 0) + 1
    _next_seq[key] = seq
    message = protocol.action(action_type, {"debateId": key, **payload, "seq": seq})
    await get_channel_layer().group_send(
        protocol.group_name(key), {"type": "debate.event", "action": message}
    )
    return message
