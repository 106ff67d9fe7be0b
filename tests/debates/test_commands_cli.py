"""`python manage.py run_debate` and `recover_debates` as real processes: output and exit codes.

Each test runs manage.py in a child process against its own SQLite file (migrated once per
module), so the exit status is the one a shell sees.
"""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.stubs.openai_stub import OpenAIStub

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120  # a bound for a hung child to fail the test, never a timed assertion


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict:
    db = tmp_path_factory.mktemp("cli") / "cli.sqlite3"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "OPENAI_", "DEBATE_", "PYTEST_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{db}",
        DJANGO_SETTINGS_MODULE="tradeapp.settings",
        OFFLINE_LLM_TOKENS_PER_S="0",
        TOKEN_FLUSH_INTERVAL_MS="0",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=WAIT_S,
    )
    return env


def manage(env: dict, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )


def test_run_debate_succeeds_with_exit_0(cli_env):
    done = manage(cli_env, "run_debate", "ETH", "--turns", "2")
    assert done.returncode == 0, done.stderr
    assert "[turn 1] BULL" in done.stdout
    assert "completed: 2 of 2 turns and a verdict," in done.stdout
    assert "Verdict: " in done.stdout
    assert "(sample market data)" in done.stdout


def test_run_debate_unknown_asset_exits_non_zero(cli_env):
    done = manage(cli_env, "run_debate", "ZZZZ")
    assert done.returncode == 1
    assert "No sample market data for 'ZZZZ'." in done.stderr
    assert "Traceback" not in done.stderr


def test_run_debate_bad_turns_exits_non_zero(cli_env):
    done = manage(cli_env, "run_debate", "BTC", "--turns", "0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [("ok", None), ("500", "LLM endpoint returned HTTP 500."), ("drop", "closed mid-stream")],
)
def test_run_debate_llm_openai_against_the_stub(cli_env, behaviour, error):
    stub = OpenAIStub()
    stub.plan.extend(["ok", behaviour])
    stub.start()
    try:
        done = manage(
            cli_env,
            "run_debate",
            "BTC",
            "--turns",
            "2",
            "--llm",
            "openai",
            OPENAI_API_KEY="test-key",
            OPENAI_BASE_URL=stub.base_url,
            OPENAI_MAX_RETRIES="0",
            DEBATE_LLM_TURN_RETRIES="0",  # the turn is not tried again: the failure shows
        )
    finally:
        stub.stop()
    assert stub.replies[0] in done.stdout  # the first answer streamed before anything failed
    if error is None:
        assert done.returncode == 0, done.stderr
        assert "Verdict: BUY (confidence 0.80)" in done.stdout
    else:
        assert done.returncode == 1
        assert " failed: " in done.stderr
        assert error in done.stderr
        assert "Traceback" not in done.stderr


def test_recover_debates_resumes_a_stale_debate_and_exits_0(cli_env):
    code = (
        "import django; django.setup()\n"
        "from django.utils import timezone\n"
        "from debates.models import Argument, Debate\n"
        f"old = timezone.now() - timezone.timedelta(seconds={timedelta(hours=1).total_seconds()})\n"
        "d = Debate.objects.create(asset='SOL', max_turns=2, status='running', runner_id='dead',"
        " started_at=old, heartbeat_at=old)\n"
        "Argument.objects.create(debate=d, turn=1, agent='bull', content='Saved.')\n"
        "print(d.id)\n"
    )
    made = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=True,
    )
    debate_id = made.stdout.strip()
    done = manage(cli_env, "recover_debates")
    assert done.returncode == 0, done.stderr
    assert f"Debate {debate_id}: completed" in done.stdout
    again = manage(cli_env, "recover_debates")
    assert (again.returncode, again.stdout.strip()) == (0, "No stale debates.")


def test_run_debate_interrupted_cancels_the_debate_and_exits_non_zero(cli_env):
    child = subprocess.Popen(
        [sys.executable, "manage.py", "run_debate", "BTC", "--turns", "4", "--rate", "5"],
        cwd=ROOT,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background (`cmd &`, nohup) ignores
        # SIGINT, and a child inherits that, so Ctrl-C would never reach it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        header = child.stdout.readline()  # "Debate <id> about BTC, 4 turns"
        debate_id = header.split()[1]
        assert child.stdout.read(len("\n[turn 1] BULL")) == "\n[turn 1] BULL"
        child.send_signal(signal.SIGINT)  # Ctrl-C while the bull is speaking
        _, err = child.communicate(timeout=WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 1
    assert f"Debate {debate_id} cancelled (interrupted)." in err
    code = (
        "import django; django.setup()\n"
        "from debates.models import Debate\n"
        f"d = Debate.objects.get(pk='{debate_id}')\n"
        "print(d.status, d.arguments.count())\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=True,
    )
    status, saved = shown.stdout.split()
    assert status == "cancelled"
    assert int(saved) < 4
