"""Live vote tallies (DEBATE/VOTES): coalesced, exact at the end, given to late joiners."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from debates import services
from debates.models import Debate
from streaming import protocol, tallies
from streaming.fanout import _Debate, get_hub
from tests.streaming.conftest import connect, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL_MS = 400


@pytest.fixture(autouse=True)
def _tally_settings(settings):
    settings.VOTES_TALLY_INTERVAL_MS = INTERVAL_MS
    tallies.reset()
    yield
    tallies.reset()


def _voters(n: int) -> list:
    model = get_user_model()
    # No password: hashing one per voter would be most of the test's time.
    return model.objects.bulk_create([model(username=f"v{i}") for i in range(n)])


def _vote_all(debate: Debate, ballots: list) -> None:
    for user, side in ballots:
        services.vote_cast(debate=debate, user=user, side=side)


def _is_votes(message: dict) -> bool:
    return message["type"] == protocol.VOTES


async def test_many_votes_reach_a_viewer_as_few_messages_with_the_exact_final_tally():
    debate = await database_sync_to_async(Debate.objects.create)(asset="BTC")
    voters = await database_sync_to_async(_voters)(30)
    comm, first = await connect(debate.id)
    assert first["type"] == protocol.CONNECTED
    # 30 voters, the first ten of whom change their minds and then repeat themselves.
    ballots = [(u, "bull" if i % 3 else "bear") for i, u in enumerate(voters)]
    ballots += [(u, "bear") for u in voters[:10]] * 2
    started = time.monotonic()
    await database_sync_to_async(_vote_all)(debate, ballots)
    seen = await receive_until(
        comm,
        lambda m: (
            _is_votes(m)
            and m["payload"]["before"]["bull"] + m["payload"]["before"]["bear"] == 30
            and m["payload"]["version"] >= 30
        ),
    )
    elapsed = time.monotonic() - started
    votes = [m for m in seen if _is_votes(m)]
    final = votes[-1]["payload"]
    # bull: voters 1, 2, 4, 5, ... (i % 3 != 0) past the first ten, which all ended bear.
    bull = sum(1 for i in range(10, 30) if i % 3)
    assert (final["before"], final["phase"]) == ({"bull": bull, "bear": 30 - bull}, "before")
    assert final["version"] == 30 + sum(1 for i in range(10) if i % 3)  # rows + real changes
    assert "seq" not in final
    # Coalesced: at most one message per interval (plus the first, sent at once).
    assert len(votes) <= elapsed / (INTERVAL_MS / 1000) + 2
    assert len(votes) < len(ballots) / 4
    versions = [m["payload"]["version"] for m in votes]
    assert versions == sorted(set(versions))  # never an older tally after a newer one
    await comm.disconnect()


async def test_a_late_joiner_gets_the_current_tallies_after_its_catch_up():
    debate = await database_sync_to_async(Debate.objects.create)(asset="ETH")
    voters = await database_sync_to_async(_voters)(3)
    await database_sync_to_async(_vote_all)(
        debate, [(voters[0], "bull"), (voters[1], "bull"), (voters[2], "bear")]
    )
    comm, first = await connect(debate.id)
    assert first["type"] == protocol.CONNECTED
    votes = await comm.receive_json_from(timeout=10)
    assert votes["type"] == protocol.VOTES
    assert votes["payload"]["before"] == {"bull": 2, "bear": 1}
    assert votes["payload"]["version"] == 3
    # A second viewer of the same process gets the hub's copy, right after CONNECTED.
    other, _ = await connect(debate.id)
    assert (await other.receive_json_from(timeout=10))["payload"]["version"] == 3
    await comm.disconnect()
    await other.disconnect()


async def test_a_resuming_client_gets_the_missed_events_then_the_tallies():
    from streaming.publisher import publish_event

    debate = await database_sync_to_async(Debate.objects.create)(asset="ADA", status="running")
    voters = await database_sync_to_async(_voters)(2)
    for status_or_turn in ({"status": "running"}, {"currentAgent": "bull", "turn": 1}):
        kind = protocol.STATUS_UPDATE if "status" in status_or_turn else protocol.TURN_CHANGE
        await publish_event(debate.id, kind, status_or_turn)
    await database_sync_to_async(_vote_all)(debate, [(voters[0], "bear"), (voters[1], "bear")])
    comm, first = await connect(debate.id, last_seq=1)
    assert (first["type"], first["payload"]["lastSeq"]) == (protocol.CONNECTED, 2)
    missed = await comm.receive_json_from(timeout=10)
    assert (missed["type"], missed["payload"]["seq"]) == (protocol.TURN_CHANGE, 2)
    votes = await comm.receive_json_from(timeout=10)
    assert votes["type"] == protocol.VOTES
    assert votes["payload"]["before"] == {"bull": 0, "bear": 2}
    await comm.disconnect()


async def test_a_debate_without_votes_sends_no_tallies():
    debate = await database_sync_to_async(Debate.objects.create)(asset="SOL")
    comm, _first = await connect(debate.id)
    hub = get_hub()
    await hub.debates[str(debate.id)].votes_task  # the hub has read the (empty) tallies
    assert hub.votes_of(str(debate.id)) is None
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


class _Viewer:
    """A local viewer with daphne's fast path: records the versions written to it."""

    viewer_id = None

    def __init__(self) -> None:
        self.versions: list[int] = []
        self.got: dict[int, asyncio.Future] = {}

    def deliver_votes_now(self, version: int, frame: bytes) -> int:
        self.versions.append(version)
        future = self.got.get(version)
        if future is not None and not future.done():
            future.set_result(True)
        return 1


async def test_the_hub_writes_the_newest_tallies_at_most_once_per_interval():
    debate_id = "6f1c1d3e-0000-4000-8000-0000000000aa"
    hub = get_hub()
    state = hub.debates[debate_id] = _Debate()
    state.subscribed = True
    viewer = _Viewer()
    state.members.add(viewer)
    loop = asyncio.get_running_loop()
    viewer.got = {1: loop.create_future(), 7: loop.create_future()}

    zero = {"bull": 0, "bear": 0}
    texts = {
        version: protocol.encode(
            protocol.votes(
                debate_id, version=version, before=zero, after=zero, swing=None, moved_to=None
            )
        )
        for version in range(1, 8)
    }
    text = texts.__getitem__

    # The first tally after a quiet interval goes at once.
    hub._on_votes(debate_id, 1, text(1))
    await asyncio.wait_for(viewer.got[1], 5)
    # Several processes' messages, one arriving late (older): one write of the newest at the
    # end of the interval.
    for version in (3, 2, 5, 7, 4):
        hub._on_votes(debate_id, version, text(version))
    assert state.votes_timer is not None
    assert viewer.versions == [1]
    await asyncio.wait_for(viewer.got[7], 5)
    assert viewer.versions == [1, 7]
    assert hub.votes_of(debate_id) == (7, text(7))
    hub._on_votes(debate_id, 6, text(6))  # older than what was sent: dropped
    assert state.votes_timer is None
    assert viewer.versions == [1, 7]
    hub.debates.pop(debate_id)
