"""The event log of a finished debate, archived in the database for replay after the TTL.

When a debate's final STATUS_UPDATE has been published, the publisher copies the whole event
log (the exact texts with their seqs) into one DebateEventArchive row. After the live log's TTL
a viewer gets the archived events: the same texts and the same seqs as live, so ``?lastSeq=N``
stays exact. One write per debate, never per event. A log that does not run 1..N without a gap
(e.g. Redis lost it mid-debate) is not archived; such debates fall back to streaming.replay.
"""

import logging
import zlib

from channels.db import database_sync_to_async
from django.db import transaction

from debates.models import Debate
from streaming.eventlog import get_event_log
from streaming.models import DebateEventArchive

logger = logging.getLogger(__name__)


def is_complete(events: list[tuple[int, str]]) -> bool:
    """True when the events are seqs 1..N in order, without a gap."""
    return bool(events) and all(seq == i for i, (seq, _text) in enumerate(events, start=1))


def archive_save(*, debate_id, events: list[tuple[int, str]]) -> bool:
    """Store a finished debate's complete event log; False when incomplete or no such debate."""
    if not is_complete(events) or any("\n" in text for _seq, text in events):
        return False
    packed = zlib.compress("\n".join(text for _seq, text in events).encode(), 6)
    with transaction.atomic():
        if not Debate.objects.filter(pk=debate_id).exists():
            return False
        DebateEventArchive.objects.update_or_create(
            debate_id=debate_id, defaults={"last_seq": events[-1][0], "events": packed}
        )
    return True


def archive_events(*, debate_id) -> list[tuple[int, str]] | None:
    """The archived (seq, text) events of a debate, or None when it has no archive."""
    row = DebateEventArchive.objects.filter(debate_id=debate_id).first()
    if row is None:
        return None
    texts = zlib.decompress(bytes(row.events)).decode().split("\n")
    return list(enumerate(texts, start=1))


async def archive_debate_log(debate_id) -> bool:
    """Copy the debate's live event log into the database (after its final status)."""
    try:
        events = await get_event_log().read_after(str(debate_id), 0)
        if not is_complete(events):
            logger.warning("event log of %s is incomplete; not archived", debate_id)
            return False
        return await database_sync_to_async(archive_save)(debate_id=debate_id, events=events)
    except Exception:
        logger.warning("archiving the event log of %s failed", debate_id, exc_info=True)
        return False
