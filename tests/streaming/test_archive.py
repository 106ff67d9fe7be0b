"""The archived event log: exact round trip, written at the final status, a synthesis when the
live log is incomplete."""

import orjson
import pytest
from django.utils import timezone

from debates.models import Debate, DebateStatus
from streaming import archive, protocol
from streaming.models import DebateEventArchive
from streaming.publisher import publish_event

pytestmark = pytest.mark.django_db(transaction=True)


def _events(n: int) -> list[tuple[int, str]]:
    return [
        (i, protocol.encode(protocol.event(protocol.STATUS_UPDATE, "d", i, status="x\ny")))
        for i in range(1, n + 1)
    ]


def test_round_trip_keeps_seqs_and_texts():
    debate = Debate.objects.create(asset="AAPL", status=DebateStatus.COMPLETED)
    events = _events(5)
    assert archive.archive_save(debate_id=debate.pk, events=events)
    assert archive.archive_read(debate_id=debate.pk) == (events, False)
    assert DebateEventArchive.objects.get(pk=debate.pk).last_seq == 5


def test_incomplete_logs_and_unknown_debates_are_not_archived():
    debate = Debate.objects.create(asset="AAPL", status=DebateStatus.COMPLETED)
    assert not archive.archive_save(debate_id=debate.pk, events=_events(5)[1:])  # no seq 1
    assert not archive.archive_save(debate_id=debate.pk, events=[])
    gap = _events(5)
    del gap[2]
    assert not archive.archive_save(debate_id=debate.pk, events=gap)
    other = Debate(asset="MSFT")  # never saved
    assert not archive.archive_save(debate_id=other.pk, events=_events(2))
    assert archive.archive_read(debate_id=debate.pk) is None


async def test_the_final_status_archives_the_log(settings):
    from channels.db import database_sync_to_async

    settings.REDIS_URL = ""
    settings.TOKEN_FLUSH_INTERVAL_MS = 0
    debate = await database_sync_to_async(Debate.objects.create)(
        asset="AAPL", status=DebateStatus.RUNNING, started_at=timezone.now()
    )
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    await publish_event(debate.id, protocol.TURN_CHANGE, {"currentAgent": "bull", "turn": 1})
    assert await database_sync_to_async(archive.archive_read)(debate_id=debate.pk) is None
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "cancelled"})
    archived, synthesised = await database_sync_to_async(archive.archive_read)(debate_id=debate.pk)
    assert not synthesised
    assert [seq for seq, _ in archived] == [1, 2, 3]
    assert '"status":"cancelled"' in archived[-1][1]


async def test_an_incomplete_log_is_archived_as_a_synthesis_of_the_saved_arguments(settings):
    from channels.db import database_sync_to_async

    from debates.models import Argument
    from streaming import backends, eventlog

    settings.REDIS_URL = ""
    settings.TOKEN_FLUSH_INTERVAL_MS = 0
    debate = await database_sync_to_async(Debate.objects.create)(
        asset="AAPL", status=DebateStatus.RUNNING, started_at=timezone.now()
    )
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    await publish_event(debate.id, protocol.TURN_CHANGE, {"currentAgent": "bull", "turn": 1})
    await database_sync_to_async(Argument.objects.create)(
        debate=debate, turn=1, agent="bull", content="Saved."
    )
    # The log loses its head (as when Redis lost it mid-debate): seq 1 is gone.
    log = eventlog._memory_log._logs[backends.key(str(debate.id))]
    log.events = log.events[1:]
    await database_sync_to_async(Debate.objects.filter(pk=debate.pk).update)(
        status=DebateStatus.COMPLETED, finished_at=timezone.now()
    )
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "completed"})
    archived, synthesised = await database_sync_to_async(archive.archive_read)(debate_id=debate.pk)
    assert synthesised
    kinds = [orjson.loads(text)["type"] for _seq, text in archived]
    assert kinds == [
        protocol.STATUS_UPDATE,
        protocol.TURN_CHANGE,
        protocol.TOKEN_RECEIVED,
        protocol.ARGUMENT_COMPLETE,
        protocol.STATUS_UPDATE,
    ]
    assert [seq for seq, _ in archived] == [1, 2, 3, 4, 5]
