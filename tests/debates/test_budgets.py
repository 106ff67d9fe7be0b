"""Budgets: a debate's own (tokens, dollars) and a user's daily one; the early conclusion."""

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from debates import services
from debates.models import Argument, Debate
from debates.runs.run import DebateRun
from streaming import protocol
from tests.stubs.events import (
    EventCollector,
    close_async_db_connections,  # noqa: F401 - a fixture
)


def _spend(debate: Debate, *, turn: int, prompt: int, completion: int, cost=None, **fields):
    return Argument.objects.create(
        debate=debate,
        turn=turn,
        agent="bull" if turn % 2 else "bear",
        content="x",
        prompt_tokens=prompt,
        completion_tokens=completion,
        model="m",
        cost=cost,
        **fields,
    )


# --- A run that reaches its budget ------------------------------------------------------------


async def _run(debate) -> EventCollector:
    async with EventCollector(debate.id) as events:
        assert await DebateRun(debate.id, runner_id="r1").run() == "completed"
        await events.finished.wait()
    return events


def _claimed(user, max_turns: int, **budget) -> Debate:
    debate = services.debate_create(asset="BTC", max_turns=max_turns, created_by=user, **budget)
    return services.debate_claim(debate=debate, runner_id="r1")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings", "close_async_db_connections")
@override_settings(USAGE_EVERY_N_TOKENS=0)
async def test_a_token_budget_lets_the_argument_finish_then_the_moderator_concludes(user):
    debate = await sync_to_async(_claimed)(user, 4, budget_tokens=1)
    events = await _run(debate)
    # The bull's opening finished; its usage reached the budget; the moderator spoke next.
    types = events.types()
    done = [(c["agent"], c["turn"]) for c in events.of(protocol.ARGUMENT_COMPLETE)]
    assert done == [("bull", 1), ("moderator", 2)]
    assert events.of(protocol.CONCLUDING) == [
        {
            "debateId": str(debate.id),
            "reason": "budget",
            "seq": events.of(protocol.CONCLUDING)[0]["seq"],
        }
    ]
    # In order: turn 1 complete, its USAGE (over budget), CONCLUDING, then the moderator's turn.
    first_complete = types.index(protocol.ARGUMENT_COMPLETE)
    assert types[first_complete + 1 : first_complete + 4] == [
        protocol.USAGE,
        protocol.CONCLUDING,
        protocol.TURN_CHANGE,
    ]
    assert events.of(protocol.TURN_CHANGE)[-1] == {
        "debateId": str(debate.id),
        "currentAgent": "moderator",
        "turn": 2,
        "seq": events.of(protocol.TURN_CHANGE)[-1]["seq"],
    }
    assert events.of(protocol.USAGE)[0]["budget"] == {"tokens": 1, "cost": None}
    await debate.arefresh_from_db()
    assert debate.conclusion_reason == "budget"
    assert debate.verdict is not None
    # The moderator's prompt held only what was said: turn 1.
    moderator = await Argument.objects.aget(debate=debate, agent="moderator")
    assert moderator.turn == 2
    assert moderator.prompt_tokens > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings", "close_async_db_connections")
@override_settings(
    USAGE_EVERY_N_TOKENS=0,
    # One dollar per completion token, prompts free: a $5 budget is reached within turn 1.
    LLM_PRICES={"offline-analyst": {"prompt": 0, "completion": 1_000_000}},
)
async def test_a_cost_budget_concludes_too(user):
    debate = await sync_to_async(_claimed)(user, 3, budget_cost=Decimal(5))
    events = await _run(debate)
    assert [c["agent"] for c in events.of(protocol.ARGUMENT_COMPLETE)] == ["bull", "moderator"]
    bull = await Argument.objects.aget(debate=debate, agent="bull")
    assert bull.cost == Decimal(bull.completion_tokens)
    assert events.of(protocol.USAGE)[0]["total"]["cost"] == float(bull.completion_tokens)
    assert [c["reason"] for c in events.of(protocol.CONCLUDING)] == ["budget"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings", "close_async_db_connections")
@override_settings(USAGE_EVERY_N_TOKENS=0)
async def test_a_budget_reached_on_the_last_turn_is_no_early_conclusion(user):
    debate = await sync_to_async(_claimed)(user, 1, budget_tokens=1)
    events = await _run(debate)
    assert events.of(protocol.CONCLUDING) == []
    await debate.arefresh_from_db()
    assert debate.conclusion_reason == ""
    assert [c["turn"] for c in events.of(protocol.ARGUMENT_COMPLETE)] == [1, 2]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings", "close_async_db_connections")
@override_settings(USAGE_EVERY_N_TOKENS=10)
async def test_a_budget_reached_mid_argument_is_announced_at_once(user):
    debate = await sync_to_async(_claimed)(user, 4, budget_tokens=10)
    events = await _run(debate)
    types = events.types()
    # The tenth token's reading reaches the budget: CONCLUDING comes before turn 1 is complete.
    assert types.index(protocol.CONCLUDING) < types.index(protocol.ARGUMENT_COMPLETE)
    assert [c["agent"] for c in events.of(protocol.ARGUMENT_COMPLETE)] == ["bull", "moderator"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings", "close_async_db_connections")
@override_settings(USAGE_EVERY_N_TOKENS=0, USER_DAILY_TOKEN_BUDGET=1000)
async def test_the_rest_of_the_daily_budget_concludes_a_run(user):
    def earlier_spend():
        earlier = services.debate_create(asset="ETH", max_turns=2, created_by=user)
        _spend(earlier, turn=1, prompt=900, completion=99)  # 999 of 1,000 used: 1 left

    await sync_to_async(earlier_spend)()
    debate = await sync_to_async(_claimed)(user, 4)
    events = await _run(debate)
    assert [c["agent"] for c in events.of(protocol.ARGUMENT_COMPLETE)] == ["bull", "moderator"]
    assert events.of(protocol.USAGE)[0]["budget"] == {"tokens": 1, "cost": None}
    await debate.arefresh_from_db()
    assert debate.conclusion_reason == "budget"


# --- The daily budget at create and start: 429 --------------------------------------------------


@pytest.mark.django_db
def test_create_and_start_past_the_daily_token_budget_are_429(settings, auth_client, user):
    settings.USER_DAILY_TOKEN_BUDGET = 1000
    pending = services.debate_create(asset="BTC", max_turns=2, created_by=user)
    spent = services.debate_create(asset="BTC", max_turns=2, created_by=user)
    _spend(spent, turn=1, prompt=600, completion=399)
    assert auth_client.post("/api/debates/", {"asset": "BTC"}, format="json").status_code == 201
    _spend(spent, turn=2, prompt=1, completion=0)  # 1,000 tokens in 24 hours
    refused = auth_client.post("/api/debates/", {"asset": "BTC"}, format="json")
    assert refused.status_code == 429
    body = refused.json()
    assert body == {
        "detail": "You may use 1000 tokens in 24 hours; try again later.",
        "quota": "daily_tokens",
        "limit": 1000,
        "window": "24h",
    }
    assert 0 < int(refused["Retry-After"]) <= 24 * 3600
    started = auth_client.post(f"/api/debates/{pending.id}/start/")
    assert started.status_code == 429
    assert started.json()["quota"] == "daily_tokens"
    pending.refresh_from_db()
    assert pending.status == "pending"
    # Usage older than 24 hours no longer counts.
    Argument.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    assert auth_client.post("/api/debates/", {"asset": "BTC"}, format="json").status_code == 201


@pytest.mark.django_db
def test_the_daily_cost_budget_is_429_and_staff_are_exempt(settings, auth_client, user, staff_user):
    settings.USER_DAILY_COST_BUDGET = 0.5
    spent = services.debate_create(asset="BTC", max_turns=2, created_by=user)
    _spend(spent, turn=1, prompt=10, completion=10, cost=Decimal("0.3"))
    _spend(spent, turn=2, prompt=10, completion=10, cost=None)  # unknown: not counted
    assert auth_client.post("/api/debates/", {"asset": "BTC"}, format="json").status_code == 201
    _spend(spent, turn=3, prompt=10, completion=10, cost=Decimal("0.2"))
    refused = auth_client.post("/api/debates/", {"asset": "BTC"}, format="json")
    assert refused.status_code == 429
    assert (refused.json()["quota"], refused.json()["limit"]) == ("daily_cost", 0.5)
    staff_spent = services.debate_create(asset="BTC", max_turns=2, created_by=staff_user)
    _spend(staff_spent, turn=1, prompt=10, completion=10, cost=Decimal("9"))
    staff = APIClient()
    staff.force_authenticate(staff_user)
    assert staff.post("/api/debates/", {"asset": "BTC"}, format="json").status_code == 201


# --- REST: budgets at creation, totals on the debate ---------------------------------------------


@pytest.mark.django_db
def test_budgets_are_set_at_creation_and_validated(auth_client):
    created = auth_client.post(
        "/api/debates/", {"asset": "BTC", "budgetTokens": 5000, "budgetCost": "0.25"}, format="json"
    )
    assert created.status_code == 201
    assert (created.json()["budgetTokens"], created.json()["budgetCost"]) == (5000, 0.25)
    assert created.json()["conclusionReason"] == ""
    for bad in (
        {"budgetTokens": 0},
        {"budgetTokens": "many"},
        {"budgetTokens": 10**12},
        {"budgetCost": -1},
        {"budgetCost": "0.000000001"},
        {"budgetCost": "NaN"},
        {"budgetCost": 10**9},
    ):
        refused = auth_client.post("/api/debates/", {"asset": "BTC", **bad}, format="json")
        assert refused.status_code == 400, bad
        assert set(refused.json()) == set(bad), refused.json()
    none = auth_client.post("/api/debates/", {"asset": "BTC", "budgetTokens": None}, format="json")
    assert none.status_code == 201
    assert none.json()["budgetTokens"] is None


@pytest.mark.django_db
def test_usage_totals_in_the_detail_and_the_list(auth_client, user):
    debate = services.debate_create(asset="BTC", max_turns=2, created_by=user)
    _spend(debate, turn=1, prompt=100, completion=20, cost=Decimal("0.0004"))
    _spend(debate, turn=2, prompt=150, completion=30, cost=Decimal("0.0006"), usage_estimated=True)
    Argument.objects.create(
        debate=debate,
        turn=3,
        agent="moderator",
        content="v",
        prompt_tokens=300,
        completion_tokens=40,
        model="m",
        cost=Decimal("0.001"),
    )
    detail = auth_client.get(f"/api/debates/{debate.id}/").json()
    assert detail["usage"] == {
        "perAgent": {
            "bull": {"promptTokens": 100, "completionTokens": 20, "cost": 0.0004},
            "bear": {"promptTokens": 150, "completionTokens": 30, "cost": 0.0006},
            "moderator": {"promptTokens": 300, "completionTokens": 40, "cost": 0.001},
        },
        "total": {"promptTokens": 550, "completionTokens": 90, "cost": 0.002},
        "estimated": True,
    }
    assert detail["arguments"][1]["usageEstimated"] is True
    assert detail["arguments"][0]["cost"] == 0.0004
    listed = auth_client.get("/api/debates/").json()["results"][0]
    assert listed["usage"]["total"] == {"promptTokens": 550, "completionTokens": 90, "cost": 0.002}
    Argument.objects.filter(turn=3).update(cost=None)  # a model without a price
    detail = auth_client.get(f"/api/debates/{debate.id}/").json()
    assert detail["usage"]["total"]["cost"] is None
    assert detail["usage"]["perAgent"]["moderator"]["cost"] is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_settings", "close_async_db_connections")
async def test_a_debate_taken_over_while_concluding_goes_straight_to_the_verdict(user):
    def concluding() -> Debate:
        debate = _claimed(user, 4, budget_tokens=50)
        usage = {"prompt_tokens": 40, "completion_tokens": 20, "estimated": False, "model": "m"}
        assert services.run_save_argument(
            debate_id=debate.id,
            runner_id="r1",
            turn=1,
            agent="bull",
            content="Buy it: RSI-14 reads 55.0.",
            verdict=None,
            usage=usage,
        )
        assert services.run_conclude(debate_id=debate.id, runner_id="r1", reason="budget")
        # Concluding is recorded once.
        assert not services.run_conclude(debate_id=debate.id, runner_id="r1", reason="budget")
        return debate

    debate = await sync_to_async(concluding)()
    events = await _run(debate)  # the same runner id: as after a takeover, from the saved turn
    assert events.of(protocol.CONCLUDING) == []  # announced before; not again
    done = [(c["agent"], c["turn"]) for c in events.of(protocol.ARGUMENT_COMPLETE)]
    assert done == [("moderator", 2)]
    await debate.arefresh_from_db()
    assert debate.verdict is not None
    assert debate.conclusion_reason == "budget"
