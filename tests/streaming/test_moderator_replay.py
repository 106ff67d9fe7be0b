"""The moderator's events over the consumer: live, on resume from the log, and after the TTL."""

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from debates.models import Debate, DebateStatus
from streaming import backends, eventlog, protocol
from streaming.publisher import publish_event
from tests.streaming.conftest import connect, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = {"questionId": 7, "text": "<script>x</script>", "askedBy": "alice", "turn": 1}
EVENTS = [
    (protocol.STATUS_UPDATE, {"status": "running"}),
    (protocol.TURN_CHANGE, {"currentAgent": "bull", "turn": 1}),
    (protocol.TOKEN_RECEIVED, {"agent": "bull", "token": "Up ", "turn": 1}),
    (protocol.PAUSED, {"pausedAt": "2026-01-01T00:00:00.000Z"}),
    (protocol.QUESTION, QUESTION),
    (protocol.RESUMED, {}),
    (protocol.TOKEN_RECEIVED, {"agent": "bull", "token": "up.", "turn": 1}),
    (protocol.ARGUMENT_COMPLETE, {"agent": "bull", "content": "Up up.", "turn": 1}),
    (protocol.CONCLUDING, {"reason": "moderator"}),
    (protocol.TURN_CHANGE, {"currentAgent": "moderator", "turn": 2}),
]


def _expire_log(debate_id) -> None:
    """Drop the in-process event log, as Redis's TTL would."""
    eventlog._memory_log._logs.pop(backends.key(str(debate_id)), None)


async def test_moderator_events_live_on_resume_and_after_the_ttl(debate):
    live_comm, _ = await connect(debate.id)
    for action_type, payload in EVENTS:
        await publish_event(debate.id, action_type, payload)
    await database_sync_to_async(Debate.objects.filter(pk=debate.pk).update)(
        status=DebateStatus.COMPLETED, finished_at=timezone.now()
    )
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "completed"})
    live = await receive_until(
        live_comm, lambda m: m["payload"].get("status") == "completed", limit=50
    )
    await live_comm.disconnect()
    assert [m["type"] for m in live] == [t for t, _ in EVENTS] + [protocol.STATUS_UPDATE]
    assert [m["payload"]["seq"] for m in live] == list(range(1, len(EVENTS) + 2))
    assert live[4]["payload"] == {"debateId": str(debate.id), **QUESTION, "seq": 5}

    # Resume from the live log, then from the archive once the log has expired.
    for expire in (False, True):
        if expire:
            _expire_log(debate.id)
        for last_seq in (0, 3, 5):
            comm, first = await connect(debate.id, last_seq=last_seq)
            assert first["payload"]["reset"] is False
            replay = [await comm.receive_json_from(timeout=5) for _ in live[last_seq:]]
            assert replay == live[last_seq:]
            await comm.disconnect()
