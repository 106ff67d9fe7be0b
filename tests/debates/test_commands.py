"""manage.py run_debate and recover_debates: output, colours, exit codes."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from debates.models import Argument, Debate
from tests.stubs.openai_stub import OpenAIStub

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast")]


@pytest.fixture
def fast():
    with override_settings(OFFLINE_LLM_TOKENS_PER_S=0, TOKEN_FLUSH_INTERVAL_MS=0):
        yield


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_run_debate_prints_tokens_summary_and_verdict():
    out = run("run_debate", "eth/usd", "--turns", "2", "--rate", "0")
    debate = Debate.objects.get()
    assert debate.status == "completed"
    assert "[turn 1] BULL" in out
    assert "[turn 2] BEAR" in out
    assert "[turn 3] MODERATOR" in out
    for argument in Argument.objects.filter(debate=debate):
        assert argument.content in out  # printed token by token, exactly
    assert f"Debate {debate.id} completed: 2 of 2 turns and a verdict," in out
    assert "tokens, first token after" in out
    assert f"Verdict: {debate.verdict_recommendation.upper()}" in out
    assert "\033[" not in out  # not a TTY: no colour


def test_run_debate_with_a_token_budget_concludes_early_and_prints_the_usage():
    out = run("run_debate", "BTC", "--turns", "4", "--rate", "0", "--budget-tokens", "1")
    debate = Debate.objects.get()
    assert (debate.status, debate.conclusion_reason) == ("completed", "budget")
    assert "[concluding early: budget]" in out
    assert "[turn 2] MODERATOR" in out
    rows = list(Argument.objects.filter(debate=debate))
    prompt = sum(a.prompt_tokens for a in rows)
    completion = sum(a.completion_tokens for a in rows)
    assert f"Usage: {prompt} prompt + {completion} completion tokens, $0.000000" in out


def test_run_debate_colours_each_agent_when_forced():
    out = run("run_debate", "BTC", "--turns", "1", "--force-color")
    assert "\033[32m" in out  # bull
    assert "\033[36m" in out  # moderator


def test_run_debate_unknown_asset_is_a_command_error():
    with pytest.raises(CommandError, match="ZZZZ"):
        run("run_debate", "ZZZZ")
    assert not Debate.objects.exists()


def test_run_debate_failure_exits_non_zero_with_the_error():
    stub = OpenAIStub(default="500").start()
    try:
        with (
            override_settings(
                OPENAI_API_KEY="k", OPENAI_BASE_URL=stub.base_url, OPENAI_MAX_RETRIES=0
            ),
            pytest.raises(CommandError, match="failed: LLM endpoint returned HTTP 500"),
        ):
            run("run_debate", "BTC", "--turns", "1", "--llm", "openai")
    finally:
        stub.stop()
    assert Debate.objects.get().status == "failed"


def test_run_debate_with_the_openai_client_against_the_stub():
    stub = OpenAIStub().start()
    try:
        with override_settings(
            OPENAI_API_KEY="k", OPENAI_BASE_URL=stub.base_url, OPENAI_MAX_RETRIES=0
        ):
            out = run("run_debate", "BTC", "--turns", "2", "--llm", "openai")
    finally:
        stub.stop()
    debate = Debate.objects.get()
    assert debate.status == "completed"
    assert len(stub.replies) == 3
    for reply in stub.replies:
        assert reply in out  # every streamed answer printed, token by token
    assert list(debate.arguments.values_list("content", flat=True)) == stub.replies
    assert "Verdict: BUY (confidence 0.80) - The bull cited stronger numbers." in out


def test_run_debate_refuses_a_negative_rate():
    with pytest.raises(CommandError, match="--rate"):
        run("run_debate", "BTC", "--rate", "-1")
    assert not Debate.objects.exists()


def test_run_debate_with_openai_and_no_key_fails_clearly():
    with (
        override_settings(OPENAI_API_KEY="", OPENAI_BASE_URL=""),
        pytest.raises(CommandError, match="needs OPENAI_API_KEY"),
    ):
        run("run_debate", "BTC", "--turns", "1", "--llm", "openai")
    assert Debate.objects.get().status == "failed"


def stale_debate(turns_saved: int) -> Debate:
    debate = Debate.objects.create(
        asset="SOL",
        max_turns=2,
        status="running",
        runner_id="dead",
        started_at=timezone.now() - timedelta(hours=1),
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    for turn in range(1, turns_saved + 1):
        Argument.objects.create(debate=debate, turn=turn, agent="bull", content="Saved.")
    return debate


def test_recover_debates_resumes_stale_debates():
    debate = stale_debate(turns_saved=1)
    out = run("recover_debates")
    debate.refresh_from_db()
    assert debate.status == "completed"
    assert list(debate.arguments.values_list("turn", "agent")) == [
        (1, "bull"),
        (2, "bear"),
        (3, "moderator"),
    ]
    assert f"Debate {debate.id}: completed" in out
    assert run("recover_debates").strip() == "No stale debates."


def test_recover_debates_fail_marks_them_failed():
    debate = stale_debate(turns_saved=0)
    assert "Marked 1 stale debate(s) failed." in run("recover_debates", "--fail")
    debate.refresh_from_db()
    assert (debate.status, debate.error) == ("failed", "The runner stopped (stale heartbeat).")


def test_recover_debates_exits_non_zero_when_a_resumed_debate_fails():
    debate = stale_debate(turns_saved=1)
    stub = OpenAIStub(default="500").start()
    try:
        with (
            override_settings(
                DEBATE_LLM="openai",
                OPENAI_API_KEY="k",
                OPENAI_BASE_URL=stub.base_url,
                OPENAI_MAX_RETRIES=0,
            ),
            pytest.raises(CommandError, match=f"not completed: {debate.id}"),
        ):
            run("recover_debates")
    finally:
        stub.stop()
    debate.refresh_from_db()
    assert (debate.status, debate.error) == ("failed", "LLM endpoint returned HTTP 500.")
    assert list(debate.arguments.values_list("turn", flat=True)) == [1]
