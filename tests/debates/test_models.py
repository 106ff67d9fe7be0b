"""Model constraints and helpers."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from debates.models import Argument, Debate, DebateStatus
from streaming.models import Viewer


@pytest.mark.django_db
def test_debate_defaults(user):
    debate = Debate.objects.create(asset="BTC", created_by=user)
    assert debate.status == DebateStatus.PENDING
    assert debate.max_turns == 6
    assert debate.verdict is None
    assert not debate.is_finished


@pytest.mark.django_db
@pytest.mark.parametrize("max_turns", [0, 21])
def test_max_turns_out_of_range_is_rejected_by_the_database(max_turns):
    with pytest.raises(IntegrityError), transaction.atomic():
        Debate.objects.create(asset="BTC", max_turns=max_turns)


@pytest.mark.django_db
def test_max_turns_validators():
    with pytest.raises(ValidationError) as exc:
        Debate(asset="BTC", max_turns=25).full_clean()
    assert "max_turns" in exc.value.message_dict


@pytest.mark.django_db
def test_verdict_confidence_range_is_enforced():
    with pytest.raises(IntegrityError), transaction.atomic():
        Debate.objects.create(asset="BTC", verdict_recommendation="buy", verdict_confidence=1.5)


@pytest.mark.django_db
def test_verdict_property_once_given():
    debate = Debate.objects.create(
        asset="BTC", verdict_recommendation="sell", verdict_confidence=0.7, verdict_rationale="r"
    )
    assert debate.verdict == {"recommendation": "sell", "confidence": 0.7, "rationale": "r"}


@pytest.mark.django_db
def test_argument_turn_is_unique_per_debate():
    debate = Debate.objects.create(asset="BTC")
    Argument.objects.create(debate=debate, turn=1, agent="bull", content="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Argument.objects.create(debate=debate, turn=1, agent="bear", content="b")
    other = Debate.objects.create(asset="ETH")
    Argument.objects.create(debate=other, turn=1, agent="bull", content="c")


@pytest.mark.django_db
def test_arguments_are_ordered_by_turn():
    debate = Debate.objects.create(asset="BTC")
    for turn, agent in [(3, "bull"), (1, "bull"), (2, "bear")]:
        Argument.objects.create(debate=debate, turn=turn, agent=agent, content=str(turn))
    assert [a.turn for a in debate.arguments.all()] == [1, 2, 3]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "finished"),
    [
        (DebateStatus.PENDING, False),
        (DebateStatus.RUNNING, False),
        (DebateStatus.COMPLETED, True),
        (DebateStatus.FAILED, True),
        (DebateStatus.CANCELLED, True),
    ],
)
def test_is_finished(status, finished):
    assert Debate(asset="BTC", status=status).is_finished is finished


@pytest.mark.django_db
def test_viewer_is_live_until_disconnected(user):
    debate = Debate.objects.create(asset="BTC")
    viewer = Viewer.objects.create(debate=debate, user=user, client_ip="::1")
    assert viewer.is_live
    viewer.disconnected_at = viewer.connected_at
    assert not viewer.is_live
