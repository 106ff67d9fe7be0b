"""Moderator controls acted on by a real run: pause, resume, questions, conclude, takeover."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from django.utils import timezone

from debates import controls, lifecycle, services
from debates.engine.llm import OfflineAnalystModel
from debates.models import Argument, Debate, Question
from debates.runs.run import DebateRun
from streaming import protocol
from tests.debates.moderation import Seen, first_token_of, heartbeats, nth_token, of_type, once
from tests.stubs.events import (
    EventCollector,
    FlakyModel,
    close_async_db_connections,  # noqa: F401 - a fixture
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_settings", "close_async_db_connections", "quick_heartbeat"),
]
ANSWER = "To the moderator's question"
TOKENS_PER_S = 150  # slow enough for a control to land mid-argument


@pytest.fixture
def quick_heartbeat():
    with override_settings(DEBATE_HEARTBEAT_S=0.05):
        yield


class CountingModel(OfflineAnalystModel):
    """The offline analyst, counting the tokens it has generated (shared by every instance)."""

    generated: list = []

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            self.generated.append(chunk.message.content)
            yield chunk


def model() -> CountingModel:
    CountingModel.generated = []
    return CountingModel(seed="s", tokens_per_s=TOKENS_PER_S)


def between(types: list[str], start: str, end: str) -> list[str]:
    i = types.index(start)
    return types[i : types.index(end, i)]


@override_settings(DEBATE_IDLE_TIMEOUT_S=0.5)  # a pause is not a stall
async def test_pause_holds_the_model_and_every_token_until_resumed(claimed):
    debate = await sync_to_async(claimed)(max_turns=2)
    llm = model()
    seen = Seen(once(first_token_of(1), lambda: controls.pause(debate=debate, user=None)))
    paused = seen.when(of_type(protocol.PAUSED))
    async with EventCollector(debate.id, on_event=seen) as events:
        run = asyncio.create_task(DebateRun(debate.id, runner_id="r1", llm=llm).run())
        await paused.wait()
        await heartbeats(debate.id, 15)  # longer than the idle timeout; the run writes nothing
        published = len(events.of(protocol.TOKEN_RECEIVED))
        generated = len(llm.generated)
        types_while_paused = events.types()[events.types().index(protocol.PAUSED) :]
        await sync_to_async(controls.resume)(debate=debate, user=None)
        assert await run == "completed"
        await events.finished.wait()

    assert types_while_paused == [protocol.PAUSED]
    # The model itself waits: at most the token in flight when the pause landed is ahead.
    assert generated <= published + 2
    types = events.types()
    assert protocol.TOKEN_RECEIVED not in between(types, protocol.PAUSED, protocol.RESUMED)
    assert types.count(protocol.PAUSED) == types.count(protocol.RESUMED) == 1
    paused = events.of(protocol.PAUSED)[0]
    await debate.arefresh_from_db()
    assert debate.paused_at is None
    assert paused["pausedAt"].endswith("Z")
    # Nothing lost: the first argument is exactly what its tokens spelled.
    first = await Argument.objects.aget(debate=debate, turn=1)
    turn1 = [t["token"] for t in events.of(protocol.TOKEN_RECEIVED) if t["turn"] == 1]
    assert "".join(turn1) == first.content


async def test_a_question_is_put_to_the_next_speaker_and_answered_once(claimed, user):
    debate = await sync_to_async(claimed)(max_turns=3)
    text = "<b>What about</b> the 50-hour average?"
    ask = once(first_token_of(1), lambda: controls.ask(debate=debate, user=user, text=text))
    async with EventCollector(debate.id, on_event=ask) as events:
        assert await DebateRun(debate.id, runner_id="r1", llm=model()).run() == "completed"
        await events.finished.wait()

    [shown] = events.of(protocol.QUESTION)
    question = await Question.objects.aget()
    assert shown == {
        "debateId": str(debate.id),
        "questionId": question.pk,
        "text": text,
        "askedBy": user.username,
        "turn": 1,
        "seq": shown["seq"],
    }
    assert question.answered_in_turn == 2
    rows = [a async for a in Argument.objects.filter(debate=debate).order_by("turn")]
    assert [a.content.startswith(ANSWER) for a in rows[:3]] == [False, True, False]
    assert text in rows[1].content
    assert ANSWER not in rows[3].content  # the verdict has no open question left


async def test_conclude_finishes_the_current_argument_then_gives_the_verdict(claimed):
    debate = await sync_to_async(claimed)(max_turns=6)
    conclude = once(first_token_of(2), lambda: controls.conclude(debate=debate, user=None))
    async with EventCollector(debate.id, on_event=conclude) as events:
        assert await DebateRun(debate.id, runner_id="r1", llm=model()).run() == "completed"
        await events.finished.wait()

    assert events.of(protocol.CONCLUDING) == [
        {
            "debateId": str(debate.id),
            "reason": "moderator",
            "seq": events.of(protocol.CONCLUDING)[0]["seq"],
        }
    ]
    assert [(t["currentAgent"], t["turn"]) for t in events.of(protocol.TURN_CHANGE)] == [
        ("bull", 1),
        ("bear", 2),
        ("moderator", 3),
    ]
    types = events.types()
    # Announced while turn 2 is written; turn 2 then finishes before the verdict's turn.
    assert types.index(protocol.CONCLUDING) < types.index(
        protocol.ARGUMENT_COMPLETE, types.index(protocol.CONCLUDING)
    )
    rows = [(a.turn, a.agent) async for a in Argument.objects.filter(debate=debate)]
    assert rows == [(1, "bull"), (2, "bear"), (3, "moderator")]
    await debate.arefresh_from_db()
    assert (debate.status, debate.conclusion_reason) == ("completed", "moderator")
    assert debate.concluding_at is not None
    assert debate.verdict is not None


async def test_a_pause_longer_than_the_limit_concludes_the_debate(claimed):
    debate = await sync_to_async(claimed)(max_turns=4)
    pause = once(first_token_of(1), lambda: controls.pause(debate=debate, user=None))
    with override_settings(DEBATE_PAUSE_MAX_S=0.2):
        async with EventCollector(debate.id, on_event=pause) as events:
            assert await DebateRun(debate.id, runner_id="r1", llm=model()).run() == "completed"
            await events.finished.wait()

    types = events.types()
    i = types.index(protocol.PAUSED)
    assert types[i : i + 3] == [protocol.PAUSED, protocol.CONCLUDING, protocol.RESUMED]
    assert events.of(protocol.CONCLUDING)[0]["reason"] == "pause_timeout"
    rows = [(a.turn, a.agent) async for a in Argument.objects.filter(debate=debate)]
    assert rows == [(1, "bull"), (2, "moderator")]
    await debate.arefresh_from_db()
    assert (debate.conclusion_reason, debate.paused_at) == ("pause_timeout", None)


async def test_conclude_is_the_runs_own_method_too(claimed):
    debate = await sync_to_async(claimed)(max_turns=6)
    run = DebateRun(debate.id, runner_id="r1", llm=model())

    async def on_event(event):
        if first_token_of(1)(event):
            run.conclude("budget")

    async with EventCollector(debate.id, on_event=on_event) as events:
        assert await run.run() == "completed"
        await events.finished.wait()
    assert [c["reason"] for c in events.of(protocol.CONCLUDING)] == ["budget"]
    await debate.arefresh_from_db()
    assert debate.conclusion_reason == "budget"
    assert await Argument.objects.filter(debate=debate).acount() == 2


def _stale(debate_id) -> None:
    Debate.objects.filter(pk=debate_id).update(
        runner_id="dead", heartbeat_at=timezone.now() - timedelta(hours=1)
    )


async def test_a_paused_debate_stays_paused_after_a_takeover(claimed):
    debate = await sync_to_async(claimed)(max_turns=2, runner_id="dead")
    await Argument.objects.acreate(debate=debate, turn=1, agent="bull", content="Saved 1.")
    await sync_to_async(services.debate_pause)(debate=debate)
    await sync_to_async(_stale)(debate.id)
    assert await sync_to_async(services.debates_take_over_stale)(runner_id="r2") == [debate.id]

    seen = Seen()
    paused = seen.when(of_type(protocol.PAUSED))
    async with EventCollector(debate.id, on_event=seen) as events:
        run = asyncio.create_task(DebateRun(debate.id, runner_id="r2", llm=model()).run())
        await paused.wait()
        await heartbeats(debate.id, 3)
        assert protocol.TOKEN_RECEIVED not in events.types()
        assert await Argument.objects.filter(debate=debate).acount() == 1
        await sync_to_async(controls.resume)(debate=debate, user=None)
        assert await run == "completed"
        await events.finished.wait()
    types = events.types()
    assert types[:3] == [protocol.STATUS_UPDATE, protocol.TURN_CHANGE, protocol.PAUSED]
    assert types[3] == protocol.RESUMED


async def test_a_question_is_answered_once_when_its_turn_is_taken_over(claimed, user):
    debate = await sync_to_async(claimed)(max_turns=3, runner_id="r1")
    await sync_to_async(controls.ask)(debate=debate, user=user, text="Is RSI stretched?")
    hung = FlakyModel(seed="s", tokens_per_s=0, hang_on_turn=1, hang_after_tokens=3)
    run = DebateRun(debate.id, runner_id="r1", llm=hung)
    seen = Seen()
    third_token = seen.when(nth_token(3))
    async with EventCollector(debate.id, on_event=seen) as events:
        task = asyncio.create_task(run.run())
        await third_token.wait()
        run.request_stop("lost")  # as if its process died mid-answer
        await task
    assert "".join(t["token"] for t in events.of(protocol.TOKEN_RECEIVED)).startswith("To ")
    assert (await Question.objects.aget()).answered_in_turn is None

    await sync_to_async(_stale)(debate.id)
    assert await sync_to_async(services.debates_take_over_stale)(runner_id="r2") == [debate.id]
    assert await DebateRun(debate.id, runner_id="r2", llm=model()).run() == "completed"
    rows = [a.content async for a in Argument.objects.filter(debate=debate).order_by("turn")]
    assert [c.startswith(ANSWER) for c in rows] == [True, False, False, False]
    assert (await Question.objects.aget()).answered_in_turn == 1


def test_answered_questions_are_marked_with_the_first_saved_turn_only(claimed, user):
    debate = claimed(max_turns=3)
    question = services.question_ask(debate=debate, asked_by=user, text="Why?")
    for turn, agent in [(1, "bull"), (2, "bear")]:
        assert services.run_save_argument(
            debate_id=debate.id,
            runner_id="r1",
            turn=turn,
            agent=agent,
            content="x",
            verdict=None,
            answered=(question.pk,),
        )
    question.refresh_from_db()
    assert question.answered_in_turn == 1
    # A save that is not the run's own marks nothing.
    other = services.question_ask(debate=debate, asked_by=user, text="And?")
    assert not services.run_save_argument(
        debate_id=debate.id,
        runner_id="x",
        turn=3,
        agent="bull",
        content="x",
        verdict=None,
        answered=(other.pk,),
    )
    other.refresh_from_db()
    assert other.answered_in_turn is None


def test_run_conclude_announces_once_and_the_recorded_reason_wins(claimed):
    debate = claimed(max_turns=3)
    services.debate_conclude(debate=debate)
    assert (
        services.run_conclude(debate_id=debate.id, runner_id="r1", reason="budget") == "moderator"
    )
    assert services.run_conclude(debate_id=debate.id, runner_id="r1", reason="budget") is None
    assert services.run_conclude(debate_id=debate.id, runner_id="other", reason="x") is None


async def test_a_paused_debate_can_be_cancelled(claimed):
    debate = await sync_to_async(claimed)(max_turns=2)
    seen = Seen(once(first_token_of(1), lambda: controls.pause(debate=debate, user=None)))
    paused = seen.when(of_type(protocol.PAUSED))
    async with EventCollector(debate.id, on_event=seen) as events:
        run = asyncio.create_task(DebateRun(debate.id, runner_id="r1", llm=model()).run())
        await paused.wait()
        await sync_to_async(lifecycle.cancel)(debate=debate, user=None)
        assert await run == "cancelled"
        await events.finished.wait()
    assert events.types()[-1] == protocol.STATUS_UPDATE
    assert events.of(protocol.STATUS_UPDATE)[-1]["status"] == "cancelled"
    assert protocol.TOKEN_RECEIVED not in events.types()[events.types().index(protocol.PAUSED) :]
