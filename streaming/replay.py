"""Synthesis of a finished debate from its saved arguments, when no event log is left.

Synthesis (deterministic, so every process and every reconnect numbers it the same way):
seq 1 is ``STATUS_UPDATE {status: "running"}``; then for each saved Argument in turn order
``TURN_CHANGE {currentAgent, turn}``, ``TOKEN_RECEIVED`` whose ``token`` is the full content,
and ``ARGUMENT_COMPLETE {content}``; last ``STATUS_UPDATE`` with the final status. Timestamps
are the debate's started_at, each argument's created_at and the debate's finished_at. These seqs
are the synthesis's own: used only when a finished debate has neither a live log nor an archive
(streaming.archive), and a client resuming with lastSeq > 0 then gets CONNECTED.reset = true and
every synthetic event from seq 1 (its lastSeq may belong to the original, expired numbering).
"""

from debates.models import Debate
from debates.selectors import debate_arguments
from streaming import protocol


def _iso(value) -> str | None:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def synthesise_events(debate: Debate) -> list[tuple[int, str]]:
    """The finished debate as (seq, text) events in the live shapes; [] if not finished."""
    if not debate.is_finished:
        return []
    events: list[dict] = []

    def add(action_type: str, timestamp: str | None, **fields) -> None:
        events.append(protocol.event(action_type, debate.id, len(events) + 1, timestamp, **fields))

    add(protocol.STATUS_UPDATE, _iso(debate.started_at or debate.created_at), status="running")
    for argument in debate_arguments(debate_id=debate.id):
        ts = _iso(argument.created_at)
        add(protocol.TURN_CHANGE, ts, currentAgent=argument.agent, turn=argument.turn)
        add(
            protocol.TOKEN_RECEIVED,
            ts,
            agent=argument.agent,
            token=argument.content,
            turn=argument.turn,
        )
        add(
            protocol.ARGUMENT_COMPLETE,
            ts,
            agent=argument.agent,
            content=argument.content,
            turn=argument.turn,
        )
    add(protocol.STATUS_UPDATE, _iso(debate.finished_at), status=debate.status)
    return [(e["payload"]["seq"], protocol.encode(e)) for e in events]
