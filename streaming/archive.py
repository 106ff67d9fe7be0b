"""The event log of a finished debate, archived once in the database for replay after the TTL.

After a debate's final STATUS_UPDATE is published, the publisher archives the debate
(``archive_debate``): the whole live event log, exact texts and seqs, in one DebateEventArchive
row (one write per debate, never per event), so a replay after the log's TTL has the live seqs
and ``?lastSeq=N`` stays exact. A live log that does not run 1..N without a gap (Redis lost it
mid-debate), or is gone, is replaced by a synthesis from the saved arguments, archived as such
(``synthesised``: its seqs are its own, so a resuming client starts over). A finished debate
without an archive (its archiving failed, or it finished before archiving existed) is archived
when a viewer first needs it. Synthesis happens here only, once per debate.

Synthesis (deterministic): seq 1 is ``STATUS_UPDATE running``; then per saved Argument in turn
order ``TURN_CHANGE {currentAgent, turn}``, ``TOKEN_RECEIVED`` whose ``token`` is the full
content, and ``ARGUMENT_COMPLETE``, each followed by the moderator's ``QUESTION``s asked during
that turn, and ``CONCLUDING {reason}`` before the verdict's turn of a debate concluded early;
last ``STATUS_UPDATE`` with the final status (a pause leaves nothing: a finished debate is not
paused). Timestamps are the debate's started_at, each argument's and question's creation time and
the debate's finished_at.
"""

import logging
import zlib

from channels.db import database_sync_to_async
from django.db import transaction

from debates.models import Debate
from debates.selectors import debate_arguments, debate_questions
from streaming import protocol
from streaming.eventlog import get_event_log
from streaming.models import DebateEventArchive

logger = logging.getLogger(__name__)

Events = list[tuple[int, str]]


def is_complete(events: Events) -> bool:
    """True when the events are seqs 1..N in order, without a gap."""
    return bool(events) and all(seq == i for i, (seq, _text) in enumerate(events, start=1))


def _iso(value) -> str | None:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def synthesise_events(debate: Debate) -> Events:
    """The finished debate as (seq, text) events in the live shapes; [] if not finished."""
    if not debate.is_finished:
        return []
    events: list[dict] = []

    def add(action_type: str, timestamp: str | None, **fields) -> None:
        events.append(protocol.event(action_type, debate.id, len(events) + 1, timestamp, **fields))

    def add_questions(questions) -> None:
        for question in questions:
            add(
                protocol.QUESTION,
                _iso(question.asked_at),
                questionId=question.pk,
                text=question.text,
                askedBy=question.asked_by.get_username() if question.asked_by else "",
                turn=question.turn,
            )

    questions = list(debate_questions(debate_id=debate.id))
    add(protocol.STATUS_UPDATE, _iso(debate.started_at or debate.created_at), status="running")
    for argument in debate_arguments(debate_id=debate.id):
        ts = _iso(argument.created_at)
        if argument.agent == "moderator" and debate.conclusion_reason:
            add(
                protocol.CONCLUDING,
                _iso(debate.concluding_at) or ts,
                reason=debate.conclusion_reason,
            )
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
        add_questions(q for q in questions if q.turn == argument.turn)
    spoken = {a.turn for a in debate_arguments(debate_id=debate.id)}
    add_questions(q for q in questions if q.turn not in spoken)
    add(protocol.STATUS_UPDATE, _iso(debate.finished_at), status=debate.status)
    return [(e["payload"]["seq"], protocol.encode(e)) for e in events]


def archive_save(*, debate_id, events: Events, synthesised: bool = False) -> bool:
    """Store a finished debate's complete event log; False when incomplete or no such debate."""
    if not is_complete(events) or any("\n" in text for _seq, text in events):
        return False
    packed = zlib.compress("\n".join(text for _seq, text in events).encode(), 6)
    with transaction.atomic():
        if not Debate.objects.filter(pk=debate_id).exists():
            return False
        DebateEventArchive.objects.update_or_create(
            debate_id=debate_id,
            defaults={"last_seq": events[-1][0], "events": packed, "synthesised": synthesised},
        )
    return True


def archive_read(*, debate_id) -> tuple[Events, bool] | None:
    """The archived (seq, text) events of a debate and whether they are a synthesis, or None."""
    row = DebateEventArchive.objects.filter(debate_id=debate_id).first()
    if row is None:
        return None
    texts = zlib.decompress(bytes(row.events)).decode().split("\n")
    return list(enumerate(texts, start=1)), row.synthesised


def _archive_synthesis(debate_id) -> tuple[Events, bool] | None:
    debate = Debate.objects.filter(pk=debate_id).first()
    events = synthesise_events(debate) if debate is not None else []
    if not events or not archive_save(debate_id=debate_id, events=events, synthesised=True):
        return None
    return events, True


async def archive_debate(debate_id) -> tuple[Events, bool] | None:
    """Archive a finished debate: its live log when complete, else a synthesis from its
    arguments; return what was archived, or None (not finished, or the write failed)."""
    key = str(debate_id)
    try:
        events = await get_event_log().read_after(key, 0)
        if is_complete(events):
            if await database_sync_to_async(archive_save)(debate_id=key, events=events):
                return events, False
            return None
        logger.warning("event log of %s is incomplete; archiving a synthesis", key)
    except Exception:
        logger.warning(
            "reading the event log of %s failed; archiving a synthesis", key, exc_info=True
        )
    try:
        return await database_sync_to_async(_archive_synthesis)(key)
    except Exception:
        logger.warning("archiving debate %s failed", key, exc_info=True)
        return None
