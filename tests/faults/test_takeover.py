"""The daphne process running a debate SIGKILLed, and separately SIGTERMed, with viewers on it
and on another process.

Another process takes the debate over from its last saved argument within the stated time
(DEBATE_STALE_AFTER_S + DEBATE_SWEEP_S after a SIGKILL, one sweep after a SIGTERM, which
releases the debate); viewers hear DEBATE/RECOVERING instead of silence; SIGTERM closes sockets
with 1001; every turn is saved once and every viewer, resumed on the surviving process, ends
with the whole transcript.
"""

import asyncio
import signal
import time

import pytest

from streaming import protocol
from tests.e2e.servers import daphne_cluster
from tests.faults.test_redis_outage import _assert_transcript, _debate, _start, _wait_for
from tests.faults.viewer import Viewer

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

# The defaults (tradeapp/settings.py): stale after 6 s, a sweep every 2 s.
STALE_S, SWEEP_S = 6.0, 2.0


async def _kill_the_runner(tmp_path, sig: int) -> tuple[Viewer, Viewer, dict, float]:
    """Two processes, the debate run by the first, a viewer on each; `sig` to the first once the
    first argument is out. Returns both viewers (watched to the end), the debate and the time
    of the signal."""
    with daphne_cluster(tmp_path, 2, OFFLINE_LLM_TOKENS_PER_S="40") as servers:
        debate_id, access = _start(servers[0], turns=4)
        on_runner = Viewer(servers, debate_id)
        elsewhere = Viewer(list(reversed(servers)), debate_id)
        watching = [asyncio.create_task(v.watch()) for v in (on_runner, elsewhere)]
        await _wait_for(lambda: on_runner.arguments() and elsewhere.arguments())
        killed_at = time.monotonic()
        servers[0].kill(sig)
        await asyncio.gather(*watching)
        debate = _debate(servers[1], debate_id, access)
        return on_runner, elsewhere, debate, killed_at


def _assert_taken_over(viewers, debate: dict) -> None:
    assert debate["status"] == "completed", debate["error"]
    for viewer in viewers:
        assert viewer.final_status() == "completed"
        _assert_transcript(viewer, debate)
        assert len(viewer.running_at()) == 2  # the start, and the takeover's


async def test_sigkill_of_the_runner_is_taken_over_within_the_stated_time(tmp_path):
    on_runner, elsewhere, debate, killed_at = await _kill_the_runner(tmp_path, signal.SIGKILL)
    _assert_taken_over([on_runner, elsewhere], debate)
    taken_over_after = elsewhere.running_at()[1] - killed_at
    print(f"SIGKILL: taken over after {taken_over_after:.1f} s")
    assert taken_over_after < STALE_S + SWEEP_S + 2, taken_over_after
    # Told while the runner was silent, before the takeover.
    notices = [n for n in elsewhere.notices if n["type"] == protocol.RECOVERING]
    assert notices, "no DEBATE/RECOVERING during the silence"
    assert notices[0]["payload"] == {"debateId": debate["id"], "reason": "runner_silent"}
    assert notices[0]["arrived"] < elsewhere.running_at()[1]
    print(f"SIGKILL: viewers told after {notices[0]['arrived'] - killed_at:.1f} s")
    assert 1006 in on_runner.closes


async def test_sigterm_releases_the_debate_and_closes_sockets_with_1001(tmp_path):
    on_runner, elsewhere, debate, killed_at = await _kill_the_runner(tmp_path, signal.SIGTERM)
    _assert_taken_over([on_runner, elsewhere], debate)
    assert on_runner.closes[0] == 1001
    # Released at once: taken over by the next sweep, well before a stale heartbeat would be.
    taken_over_after = elsewhere.running_at()[1] - killed_at
    print(f"SIGTERM: taken over after {taken_over_after:.1f} s")
    assert taken_over_after < STALE_S, taken_over_after
    notices = [n for n in elsewhere.notices if n["type"] == protocol.RECOVERING]
    assert notices[0]["payload"] == {"debateId": debate["id"], "reason": "runner_stopped"}
