"""A synthesised archive keeps the moderator's questions and an early conclusion."""

import orjson
import pytest
from django.utils import timezone

from debates.models import Argument, Debate, DebateStatus, Question
from streaming import archive, protocol

pytestmark = pytest.mark.django_db


def test_synthesis_replays_questions_and_the_conclusion(user):
    debate = Debate.objects.create(
        asset="BTC",
        status=DebateStatus.COMPLETED,
        max_turns=6,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        conclusion_reason="moderator",
        concluding_at=timezone.now(),
    )
    Argument.objects.create(debate=debate, turn=1, agent="bull", content="Up.")
    Argument.objects.create(debate=debate, turn=2, agent="bear", content="Down.")
    Argument.objects.create(debate=debate, turn=3, agent="moderator", content="HOLD")
    Question.objects.create(debate=debate, asked_by=user, text="<i>Risk?</i>", turn=1)

    events = [orjson.loads(text) for _seq, text in archive.synthesise_events(debate)]

    assert [e["payload"]["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["type"] for e in events]
    assert kinds == [
        protocol.STATUS_UPDATE,
        *[protocol.TURN_CHANGE, protocol.TOKEN_RECEIVED, protocol.ARGUMENT_COMPLETE],
        protocol.QUESTION,
        *[protocol.TURN_CHANGE, protocol.TOKEN_RECEIVED, protocol.ARGUMENT_COMPLETE],
        protocol.CONCLUDING,
        *[protocol.TURN_CHANGE, protocol.TOKEN_RECEIVED, protocol.ARGUMENT_COMPLETE],
        protocol.STATUS_UPDATE,
    ]
    question = events[kinds.index(protocol.QUESTION)]["payload"]
    assert (question["text"], question["askedBy"], question["turn"]) == ("<i>Risk?</i>", "alice", 1)
    assert events[kinds.index(protocol.CONCLUDING)]["payload"]["reason"] == "moderator"
