"""Audience votes on two real daphne processes: votes through one, tallies seen on the other."""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.asyncio.client import connect

from streaming import protocol
from tests.e2e.servers import ORIGIN, daphne_cluster

pytestmark = pytest.mark.e2e

VOTERS = 40
CHANGERS = 10  # the first voters change their minds, then repeat themselves
INTERVAL_MS = 300

# JWTs for VOTERS new users of the cluster's database (no passwords: nothing to hash).
_MAKE_VOTERS = f"""
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import RefreshToken
User = get_user_model()
users = User.objects.bulk_create([User(username=f"e2e-voter-{{i}}") for i in range({VOTERS})])
users = User.objects.filter(username__startswith="e2e-voter-").order_by("id")
print(json.dumps([str(RefreshToken.for_user(u).access_token) for u in users]))
"""


def _ballots(index: int) -> list[str]:
    first = "bear" if index % 3 == 0 else "bull"
    return [first, "bear", "bear", "bear"] if index < CHANGERS else [first]


def _expected() -> tuple[dict, int]:
    finals = [_ballots(i)[-1] for i in range(VOTERS)]
    changes = sum(1 for i in range(CHANGERS) if _ballots(i)[0] != "bear")
    tally = {"bull": finals.count("bull"), "bear": finals.count("bear")}
    return tally, VOTERS + changes


async def _until_version(ws, version: int) -> list[dict]:
    """Every DEBATE/VOTES received until one with this version (other messages skipped)."""
    seen = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message["type"] == protocol.VOTES:
            seen.append(message)
            if message["payload"]["version"] >= version:
                return seen


async def test_votes_through_one_process_reach_viewers_of_the_other_coalesced(tmp_path):
    with daphne_cluster(tmp_path, 2, VOTES_TALLY_INTERVAL_MS=str(INTERVAL_MS)) as servers:
        voting, watching = servers
        access = voting.token()["access"]
        status, debate = voting.api("POST", "/api/debates/", {"asset": "BTC"}, access)
        assert status == 201, debate
        path = f"/api/debates/{debate['id']}/vote/"
        tokens = json.loads(voting.shell(_MAKE_VOTERS).strip().splitlines()[-1])
        assert len(tokens) == VOTERS
        expected, version = _expected()

        def vote(index: int) -> list[tuple[int, bool]]:
            answers = []
            for side in _ballots(index):
                status, body = voting.api("POST", path, {"side": side}, tokens[index])
                assert status == 200, body
                answers.append((status, body["changed"]))
            return answers

        async with connect(watching.ws_url(debate["id"]), origin=ORIGIN) as ws:
            assert json.loads(await ws.recv())["type"] == protocol.CONNECTED
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                answers = await asyncio.gather(
                    *(
                        asyncio.get_running_loop().run_in_executor(pool, vote, i)
                        for i in range(VOTERS)
                    )
                )
            seen = await _until_version(ws, version)
            elapsed = time.monotonic() - started

        writes = sum(changed for per_user in answers for _status, changed in per_user)
        assert writes == version  # the repeated votes changed nothing
        final = seen[-1]["payload"]
        assert final["before"] == expected
        assert (final["phase"], final["bull"], final["bear"]) == (
            "before",
            expected["bull"],
            expected["bear"],
        )
        assert final["version"] == version
        # Coalesced: far fewer messages than votes, at most one per interval (plus the first).
        assert len(seen) <= elapsed / (INTERVAL_MS / 1000) + 2
        assert len(seen) < writes / 4
        versions = [m["payload"]["version"] for m in seen]
        assert versions == sorted(set(versions))

        # A late joiner on the voting process gets the current tallies right after CONNECTED.
        async with connect(voting.ws_url(debate["id"]), origin=ORIGIN) as late:
            assert json.loads(await late.recv())["type"] == protocol.CONNECTED
            current = json.loads(await asyncio.wait_for(late.recv(), 30))
            assert current["type"] == protocol.VOTES
            assert current["payload"] == final

        status, detail = watching.api("GET", f"/api/debates/{debate['id']}/", None, access)
        assert status == 200
        assert detail["votes"]["before"] == expected
        assert detail["votes"]["version"] == version
        assert detail["votes"]["open"] == "before"
